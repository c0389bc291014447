"""Edit-pair synthesis: one editor per edit type behind one interface, registered by name."""

from curation.editors.base import (
    EDITOR_NAMES,
    EditError,
    EditInput,
    Editor,
    EditResult,
    MaskFileError,
    get_editor,
)
from curation.editors.instructions import Instruction, make_instruction
from curation.editors.masks import dense_mask, read_mask_file
from curation.editors.output import PAIR_CRF, PairFiles, write_pair

__all__ = [
    "EDITOR_NAMES", "PAIR_CRF", "EditError", "EditInput", "EditResult", "Editor", "Instruction", "MaskFileError",
    "PairFiles", "dense_mask", "get_editor", "make_instruction", "read_mask_file", "write_pair",
]
