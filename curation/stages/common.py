"""What several stages share: the clips they work on, and rejecting the clips a stage failed on."""

from __future__ import annotations

from typing import Any

from curation.stage import WorkUnit


def usable_clips(unit: WorkUnit) -> list[dict[str, Any]]:
    """The unit's clips still ok and extracted to a file: what every stage after extract works on."""
    return [c for c in unit.rows("clips") if c["status"] == "ok" and c["uri"]]


def reject_failed(clips: list[dict[str, Any]], errors: list[dict[str, Any]], stage: str) -> list[dict[str, Any]]:
    """The clips whose `errors` row names them (input = clip id), marked rejected with the reason."""
    by_input = {e["input"]: e for e in errors}
    return [
        {**c, "status": "rejected", "reject_reason": f"{stage} failed: {by_input[c['clip_id']]['error_class']}"}
        for c in clips
        if c["clip_id"] in by_input
    ]
