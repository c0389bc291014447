"""Object addition: the reverse pair of a removal. Source: the clip with the object removed; target:
the clip as it is. The target is real footage, so the model learns to add what a camera recorded."""

from __future__ import annotations

import dataclasses

import numpy as np

from curation.editors.base import EditInput, EditResult
from curation.editors.removal import ObjectRemoval, RemovalConfig

__all__ = ["ObjectAddition", "RemovalConfig"]


class ObjectAddition(ObjectRemoval):
    """The removal that makes the source is ObjectRemoval's, with the same config; only the roles swap."""

    name = "addition"

    def _edit(self, inp: EditInput, mask: np.ndarray | None) -> EditResult:
        removal = super()._edit(inp, mask)
        return dataclasses.replace(removal, edit_type=self.name, source=removal.target, target=None)
