"""Pure pieces of the pairs stage (curation/stages/pairs.py): object masks at the clip's size, the edit
types and the object a clip gets, and the gate columns of an `edit_pairs` row. No I/O, no models.
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from curation.editors.base import MaskFileError
from curation.editors.instructions import GENERIC_CLASSES, describe_object
from filters.pair_gates import GateValue, PairGateConfig, mask_area_fraction, mask_temporal_iou, object_gates
from manifests.report import FAILED, GATED
from manifests.schema import PAIR_GATES, PSNR_CAP

GATE_COLUMN = {"edit_strength": "psnr_edited"}
"""evaluate_pair's gate names that differ from their `edit_pairs` column (gate_<PAIR_GATES name>): the edit
strength gate is stored as the edited part's PSNR (it also passes on a low SSIM, recorded in gate_ssim_edited)."""
PSNR_GATES = ("psnr_edited", "psnr_kept")


def pair_id(clip_id: str, edit_type: str, object_id: str | None, seed: int, index: int) -> str:
    """Deterministic id of a pair: the same clip, type, object, seed and draw index give the same id."""
    key = f"{clip_id}\0{edit_type}\0{object_id or ''}\0{seed}\0{index}"
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def pair_seed(pid: str) -> int:
    """The seed every random choice of one pair uses (colour, style, phrasing), from its id."""
    return int(pid[:8], 16)


def resize_nearest(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """A (h, w) bool mask at (height, width), nearest neighbour (a mask stays binary)."""
    if mask.shape == (height, width):
        return mask.astype(bool)
    return cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0


def dense_track(frame_indices: Sequence[int], masks: Sequence[np.ndarray | None], num_frames: int,
                height: int, width: int) -> np.ndarray:
    """(T, H, W) bool mask of a track sampled at `frame_indices` (masks at any size, None = no mask there).

    The objects stage may sample a long clip (evenly spread frames: a stride k, or strides of 1 and 2
    mixed). The smallest gap between samples is taken as the sampling stride. A frame between two samples
    at most two strides apart takes the nearer sample's mask (the earlier on a tie): that covers the
    sampling and one lost sample, while a longer gap (the object lost or hidden) stays empty. Before the
    first and after the last sample a mask reaches half a stride, so a track is not stretched past where
    it was seen. Samples at or past `num_frames` (a clip cut to max_frames) are ignored.
    """
    idx = np.asarray(frame_indices, np.int64)
    if len(idx) != len(masks):
        raise MaskFileError(f"track has {len(idx)} frame indices but {len(masks)} masks")
    if len(idx) and idx.min() < 0:
        raise MaskFileError(f"track frame index {int(idx.min())} is negative")
    out = np.zeros((num_frames, height, width), bool)
    kept = dict(sorted((int(f), m) for f, m in zip(idx, masks) if f < num_frames and m is not None))
    if not kept:
        return out
    gaps = np.diff(np.unique(idx))
    stride = int(gaps.min()) if len(gaps) else 1
    sampled = np.array(list(kept))  # (N,) ascending frame indices with a mask
    resized = [resize_nearest(m, height, width) for m in kept.values()]
    for t in range(num_frames):
        j = int(np.searchsorted(sampled, t))  # first sample at or after t
        if j < len(sampled) and sampled[j] == t:
            out[t] = resized[j]
        elif 0 < j < len(sampled):
            if sampled[j] - sampled[j - 1] <= 2 * stride:
                out[t] = resized[j - 1] if t - sampled[j - 1] <= sampled[j] - t else resized[j]
        else:
            near = j - 1 if j else 0
            if abs(int(sampled[near]) - t) <= stride // 2:
                out[t] = resized[near]
    return out


def usable(mask: np.ndarray, cfg: PairGateConfig, frames: np.ndarray | None = None) -> bool:
    """Whether an object's mask can carry a local edit: not empty, and within the mask gates (an edit on a
    mask that fails them would be dropped by the gates anyway); with the clip's `frames`, every object gate."""
    area = mask_area_fraction(mask)
    if not (mask.any() and cfg.min_mask_area <= area <= cfg.max_mask_area and mask_temporal_iou(mask) >= cfg.min_mask_iou):
        return False
    return frames is None or all(g.passed for g in object_gates(frames, mask, cfg).values())


def choose_object(masks: Mapping[str, np.ndarray], cfg: PairGateConfig, frames: np.ndarray | None = None) -> str | None:
    """The object a clip's local edits use: the usable one (with `frames`: passing every object gate) with the
    largest mean area (ties: smallest id). Largest first, so the gates run on few masks of a clip with many."""
    for _, oid in sorted((-mask_area_fraction(m), oid) for oid, m in masks.items()):
        if usable(masks[oid], cfg, frames):
            return oid
    return None


def choose_edit_types(mix: Mapping[str, float], local: Mapping[str, bool], has_object: bool, count: int,
                      seed: int, clip_id: str, barred: Collection[str] = ()) -> list[str]:
    """Up to `count` edit types for a clip, drawn without replacement with weights `mix` from (seed, clip id);
    types needing an object (`local`) only when the clip has a usable one, and none of `barred` (types whose
    editor refuses this clip, e.g. text edits on a clip with text)."""
    names = [n for n, w in mix.items() if w > 0 and (has_object or not local[n]) and n not in barred]
    if not names:
        return []
    weights = np.array([mix[n] for n in names], np.float64)
    rng = np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(clip_id.encode())])
    drawn = rng.choice(len(names), size=min(count, len(names)), replace=False, p=weights / weights.sum())
    return [names[int(i)] for i in drawn]


def direction_texts(edit_type: str, slots: Mapping[str, str]) -> tuple[str, str]:
    """(source caption, target caption) for the CLIP direction gate, from the edit's instruction slots."""
    obj = slots.get("object", "object")
    if edit_type == "removal":
        return f"a video of a {obj}", "a video of an empty scene"
    if edit_type == "addition":
        return "a video of an empty scene", f"a video of a {obj}"
    if edit_type == "recolour":
        return f"a video of a {obj}", f"a video of a {slots.get('colour', '')} {obj}"
    if edit_type == "background":
        after = {"blur": "a blurred background", "desaturate": "a black and white background"}
        return f"a video of a {obj}", f"a video of a {obj} in front of " + after.get(
            slots.get("mode", ""), slots.get("background", "a new background"))
    if edit_type == "style":
        return "a video", f"a video in the style of {slots.get('style', 'art').replace('_', ' ')}"
    if edit_type in ("add_text", "remove_text"):
        with_text = f'a video with the {slots.get("kind", "text")} "{slots.get("text", "")}"'
        return ("a video", with_text) if edit_type == "add_text" else (with_text, "a video")
    return "a video", f"an edited video of a {obj}"


def object_name(class_name: str, frames: np.ndarray, mask: np.ndarray) -> str:
    """The object as an instruction names it: its class ("moving-object" -> "moving object"), or, for a class
    that names nothing (the proposer's), its size, colour and place as seen in `frames` under `mask`."""
    name = class_name.replace("-", " ").replace("_", " ").strip()
    return describe_object(frames, mask) if name in GENERIC_CLASSES else name


def gate_counts(values: Sequence[Mapping[str, GateValue]]) -> dict[str, int]:
    """Per gate column, over one clip's pairs (written or dropped): `pairs_gated/<gate>` (pairs the gate judged)
    and `pairs_failed/<gate>`, the `scores` rows `manifests report` turns into pass rates."""
    out: dict[str, int] = {}
    for pair in values:
        for name, gate in passed_columns(pair).items():
            if gate.passed is not None:
                out[GATED + name] = out.get(GATED + name, 0) + 1
                out[FAILED + name] = out.get(FAILED + name, 0) + (not gate.passed)
    return out


def stored(value: float | None, column: str) -> float | None:
    """A gate value as a column holds it: nan (empty region) -> null, inf PSNR (identical pixels) -> PSNR_CAP."""
    if value is None or math.isnan(value):
        return None
    if math.isinf(value):
        if column not in PSNR_GATES:
            raise ValueError(f"gate {column} is infinite")
        return PSNR_CAP if value > 0 else -PSNR_CAP
    return float(value)


def gate_columns(values: Mapping[str, GateValue], region: str) -> dict[str, Any]:
    """`gate_<name>` for every PAIR_GATES name and `gate_notes`: JSON {gate: why its column is null}."""
    by_column = {GATE_COLUMN.get(name, name): g for name, g in values.items()}
    unknown = sorted(set(by_column) - set(PAIR_GATES))
    if unknown:
        raise ValueError(f"gate(s) {unknown} have no edit_pairs column")
    row: dict[str, Any] = {}
    notes: dict[str, str] = {}
    for column in PAIR_GATES:
        gate = by_column.get(column)
        row[f"gate_{column}"] = None if gate is None else stored(gate.value, column)
        if gate is None:
            notes[column] = f"not applicable to a {region} edit"
        elif row[f"gate_{column}"] is None:
            notes[column] = gate.reason or "no pixels to measure"
    row["gate_notes"] = json.dumps(notes, sort_keys=True)
    return row


def passed_columns(values: Mapping[str, GateValue]) -> dict[str, GateValue]:
    """The gate values keyed by their column names, for `filters.pair_gates.gates_passed`."""
    return {GATE_COLUMN.get(name, name): g for name, g in values.items()}


def failed(values: Mapping[str, GateValue]) -> list[str]:
    """Column names of the gates that ran and failed."""
    return sorted(name for name, g in passed_columns(values).items() if g.passed is False)


def to_json(value: Any) -> str:
    """Edit parameters as JSON with sorted keys; numpy scalars become plain numbers."""
    return json.dumps(value, sort_keys=True, default=lambda v: v.item() if isinstance(v, np.generic) else str(v))
