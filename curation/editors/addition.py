"""Object addition: the reverse pair of a removal. Source: the clip with the object removed; target:
the clip as it is. The target is real footage, so the model learns to add what a camera recorded."""

from __future__ import annotations

import numpy as np

from curation.editors.base import EditInput, EditResult, Editor
from curation.editors.removal import RemovalConfig, remove_object

__all__ = ["ObjectAddition", "RemovalConfig"]


class ObjectAddition(Editor):
    """Shares RemovalConfig: the removal that makes the source is the same one ObjectRemoval runs."""

    name = "addition"
    local = True

    def _edit(self, inp: EditInput, mask: np.ndarray | None) -> EditResult:
        assert mask is not None
        source, holes, stats = remove_object(inp.frames, mask, inp.others, self.config)
        params = {"dilate_px": self.config.dilate_px, "inpaint": "telea", **stats}
        return self._result(inp, source=source, target=None, mask=holes, region="inside", params=params,
                            slots={"object": inp.object_class or "object"})
