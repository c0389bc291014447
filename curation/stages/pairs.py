"""Stage 8, pairs: extracted `clips` and their `objects` in, `edit_pairs` rows and the pair files out.

Per ok clip: the clip file is decoded at its native size (the first `max_frames` frames); its objects'
masks (object_frames RLE, legacy inline RLE or a mask file) are brought to that size; edit types
are drawn in a seeded weighted order from the configured mix (local types only when the clip has a usable
object: the largest one passing every object gate; text types only when its OCR signal found no text); each
editor makes a pair, the quality gates of filters/pair_gates.py score it, and a pair that passes (or every
pair, with drop_failed off) is written under `<output>/pairs/<video id>/` (each file atomically) with one
`edit_pairs` row, until `pairs_per_clip` pairs are written or the types run out. The split is a function of
the source video (curation/splits.py), so no video is in two splits.

Objects rows whose weights are `random-init` come from untrained detectors (noise masks): they are used
only with `use_random_init_objects`. Per clip, `scores` rows `pairs_made` and `pairs_dropped` count the
pairs written and those a gate dropped, `pairs_gated/<gate>` and `pairs_failed/<gate>` how many pairs each
gate judged and failed. A clip that cannot be decoded or is too short, an object whose
mask cannot be read and a pair whose editor fails are each one `errors` row; the rest goes on.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from curation.editors import PAIR_CRF, EditInput, Editor, EditResult, PairFiles, get_editor, read_mask_file, write_pair
from curation.editors.base import EDITOR_NAMES, EditError, check_frames, editor_config
from curation.editors.instructions import Instruction, Rewrite, make_instruction
from curation.editors.output import write_clip
from curation.models.clip import CLIP_FAMILY, ClipConfig, ClipEmbedder
from curation.models.vlm import VlmClient, VlmConfig
from curation.models.weights import resolve_weights
from curation.pair_rows import (
    choose_edit_types,
    choose_object,
    dense_track,
    direction_texts,
    failed,
    gate_columns,
    gate_counts,
    object_name,
    pair_id,
    pair_seed,
    passed_columns,
    to_json,
)
from curation.registry import FrozenConfig
from curation.splits import SplitConfig, assign_split
from curation.stage import Resources, Stage, StageOutput, WorkUnit
from curation.stage_config import StageConfig, owner_error
from curation.stages.common import usable_clips
from filters.base import evenly_spaced
from filters.pair_gates import (
    GateValue,
    PairGateConfig,
    VlmCheck,
    clip_direction_gate,
    evaluate_pair,
    gates_passed,
    vlm_instruction_gate,
)
from manifests.media.decode import read_frames
from manifests.media.probe import probe
from manifests.rle import rle_decode
from manifests.schema import RANDOM_INIT
from manifests.uris import resolve_uri

LOG = logging.getLogger("curation.stages.pairs")
PAIRS_DIR = "pairs"
TEXT_SIGNAL = "text_overlay"
"""The signals stage's OCR score: text edits use only clips where it was measured and found no text."""
PAPER_MIX = {"style": 0.34, "recolour": 0.53 / 3, "addition": 0.53 / 3, "removal": 0.53 / 3, "background": 0.13}
"""The ISA paper's mix on our edit types: style 34 %; its swap/recolour, add and removal share the other
53 % equally (swap has no classical editor: recolour stands in); its human-centred 13 % goes to the background
change, the edit that keeps the subject (a person, when the detector found one) and changes what is around
it. `generative` joins only when a config asks for it (it needs the user's model)."""


class PairsConfig(StageConfig):
    """The `pairs` section of a job config; every part is built by its owner, once, when the config is built."""

    mix: dict[str, float] = Field(default_factory=lambda: dict(PAPER_MIX))  # edit type -> weight
    pairs_per_clip: int = Field(2, ge=1)  # edit types per clip, drawn without replacement
    editors: dict[str, dict[str, Any]] = Field(default_factory=dict)  # per editor: its config's fields
    gates: dict[str, int | float] = Field(default_factory=dict)  # PairGateConfig fields
    splits: dict[str, Any] = Field(default_factory=dict)  # SplitConfig fields
    seed: int = 0
    drop_failed: bool = True  # a pair failing a gate that ran: no files, no row (counted in pairs_dropped)
    use_random_init_objects: bool = False
    max_frames: int = Field(48, ge=1)  # a longer clip is cut to its first max_frames frames
    crf: int = Field(PAIR_CRF, ge=0, le=51)
    clip: ClipConfig | None = None  # CLIP direction gate (skipped, with the reason, on random-init weights)
    vlm: VlmConfig | None = None  # instruction rewrite and the VLM instruction check
    gate_frames: int = Field(8, ge=1)  # frames per pair (evenly spread) shown to CLIP and the VLM
    _editor_configs: dict[str, FrozenConfig] = PrivateAttr()
    _gate_config: PairGateConfig = PrivateAttr()
    _split_config: SplitConfig = PrivateAttr()

    @model_validator(mode="after")
    def _owners_accept(self) -> PairsConfig:
        try:
            bad = sorted(set(self.mix) - set(EDITOR_NAMES))
            if bad:
                raise ValueError(f"mix: unknown edit type(s) {bad}; known: {', '.join(EDITOR_NAMES)}")
            weights = list(self.mix.values())
            if any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
                raise ValueError(f"mix weights must be finite, >= 0 and sum to > 0, got {self.mix}")
            self._editor_configs = self._build_editor_configs()
            self._gate_config = PairGateConfig.from_dict(self.gates)
            self._split_config = SplitConfig.from_dict(self.splits)
        except Exception as exc:  # noqa: BLE001 - the owners' own errors, reported as one config line
            raise owner_error(exc) from None  # the loc says where
        return self

    def _build_editor_configs(self) -> dict[str, FrozenConfig]:
        bad = sorted(set(self.editors) - set(EDITOR_NAMES))
        if bad:
            raise ValueError(f"editors: unknown editor(s) {bad}; known: {', '.join(EDITOR_NAMES)}")
        built = {name: editor_config(name, opts) for name, opts in self.editors.items()}
        return {name: built[name] if name in built else editor_config(name, {})
                for name, w in self.mix.items() if w > 0}

    @property
    def editor_configs(self) -> dict[str, FrozenConfig]:
        """{edit type: its editor's config} for every type the mix can draw (options of others checked too)."""
        return self._editor_configs

    @property
    def gate_config(self) -> PairGateConfig:
        """The pair gates' thresholds from `gates`, built once at validation."""
        return self._gate_config

    @property
    def split_config(self) -> SplitConfig:
        """The train/val/test split from `splits`, built once at validation."""
        return self._split_config


@dataclass
class ClipPairs:
    """What one clip gave: pair rows, its two count rows, and errors rows for its objects and pairs."""

    pairs: list[dict[str, Any]] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ClipInput:
    """A decoded clip and its usable objects' masks, at the clip's size."""

    clip: dict[str, Any]
    frames: np.ndarray  # (T, H, W, 3) uint8
    fps: float
    cut: bool  # True when the file has more frames than `frames` (max_frames)
    masks: dict[str, np.ndarray]  # object id -> (T, H, W) bool
    classes: dict[str, str]  # object id -> the object as an instruction names it (object_name)
    text_overlay: float | None  # the clip's OCR signal (None: not measured)


class _ClipGateEncoder:
    """The CLIP embedder seen as filters.pair_gates.ClipEncoder; without trained weights there is no embedder
    to load (the gate is skipped on the weights id before it encodes anything)."""

    def __init__(self, embedder: ClipEmbedder | None, model_name: str, weights_id: str) -> None:
        self.embedder = embedder
        self.model_name = model_name
        self.weights_id = weights_id

    def encode_images(self, frames: np.ndarray) -> np.ndarray:
        return self._loaded().frames(frames)  # (N, D)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        return self._loaded().texts(texts)  # (N, D)

    def _loaded(self) -> ClipEmbedder:
        assert self.embedder is not None, "the gate skips random-init weights before it encodes"
        return self.embedder


class _Rewritten(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    instruction: str = Field(min_length=1)


REWRITE_PROMPT = ("Rewrite this video editing instruction in other words, keeping exactly its meaning: {text!r}. "
                  'Answer with only a JSON object: {{"instruction": "<text>"}}.')
NO_FRAMES = np.zeros((0, 8, 8, 3), np.uint8)


def evenly(frames: np.ndarray, count: int) -> np.ndarray:
    """At most `count` frames evenly spread over the clip (first and last included)."""
    return frames[evenly_spaced(len(frames), count)]


def is_random_init(weights_id: str | None) -> bool:
    """Whether an objects row came from a model (or models, "a+b") with untrained weights."""
    return RANDOM_INIT in str(weights_id or "").split("+")


class PairsStage(Stage):
    name = "pairs"
    version = "1.5"  # 1.1: text edits, objects named by appearance, object gates, per-gate counts in scores; 1.2: places on
    # a 7 x 7 grid, every unnamed object sized, hues and greys shaded; 1.3: added text's size, colour and font named;
    # 1.4: places on a 14 x 14 grid, named by their centres in percent; 1.5: places in whole percent, an unnamed
    # object's outline and box named
    resources = Resources(num_cpus=1.0)
    writes = ("edit_pairs", "scores", "errors")
    Config = PairsConfig
    optional = True

    def __init__(self, config: PairsConfig) -> None:
        super().__init__()
        self.config = config
        self.gates = config.gate_config
        self.splits = config.split_config
        self.editors: dict[str, Editor] = {n: get_editor(n, c) for n, c in config.editor_configs.items()}
        self.clip: _ClipGateEncoder | None = None
        self.vlm: VlmClient | None = None

    def preflight(self) -> None:
        if self.config.clip is not None:
            resolve_weights(self.config.clip.weights, CLIP_FAMILY)

    def setup(self) -> None:
        for editor in self.editors.values():
            editor.setup()
        if self.config.clip is not None:
            embedder = ClipEmbedder(self.config.clip)
            resolved = resolve_weights(self.config.clip.weights, CLIP_FAMILY)
            if not resolved.random_init:  # random-init CLIP directions mean nothing: no model to load
                embedder.setup()
            self.clip = _ClipGateEncoder(None if resolved.random_init else embedder, embedder.model_name,
                                         resolved.weights_id)
        if self.config.vlm is not None:
            self.vlm = VlmClient(self.config.vlm)

    def process(self, unit: WorkUnit) -> StageOutput:
        clips = usable_clips(unit)
        text = {r["clip_id"]: r["value"] for r in unit.rows("scores") if r["signal"] == TEXT_SIGNAL}
        objects: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in unit.rows("objects"):
            if self.config.use_random_init_objects or not is_random_init(row.get("weights_id")):
                objects[row["clip_id"]].append(row)
        per_frame: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in unit.rows("object_frames"):
            per_frame[row["object_id"]].append(row)
        root = Path(unit.out_root)
        done, errors = self.isolate(
            clips, lambda c: self.clip_pairs(c, root, objects[c["clip_id"]], per_frame, unit.attempt,
                                             text.get(c["clip_id"])),
            lambda c: c["clip_id"], unit.attempt)
        return StageOutput({"edit_pairs": [p for d in done for p in d.pairs],
                            "scores": [s for d in done for s in d.scores],
                            "errors": errors + [e for d in done for e in d.errors]})

    def clip_pairs(self, clip: dict[str, Any], root: Path, objects: list[dict[str, Any]],
                   per_frame: dict[str, list[dict[str, Any]]], attempt: int, text_overlay: float | None = None
                   ) -> ClipPairs:
        out = ClipPairs()
        path = resolve_uri(root, clip["uri"])
        info = probe(path)
        frames = read_frames(path, list(range(min(info.frames, self.config.max_frames))))  # (T, H, W, 3)
        check_frames(frames, 2)
        t, h, w = frames.shape[:3]
        loaded, out.errors = self.isolate(
            sorted(objects, key=lambda o: o["object_id"]),
            lambda o: (o, self.object_mask(o, per_frame.get(o["object_id"], []), root, t, h, w)),
            lambda o: f"{clip['clip_id']}/{o['object_id']}", attempt)
        masks = {o["object_id"]: m for o, m in loaded}
        inp = ClipInput(clip, frames, info.fps, info.frames > t, masks,
                        {o["object_id"]: object_name(o["class_name"], frames, masks[o["object_id"]]) for o, _ in loaded},
                        text_overlay)
        chosen = choose_object(inp.masks, self.gates, frames)  # passing every object gate: one object
        barred = {n for n, e in self.editors.items() if not e.accepts(text_overlay)}
        types = choose_edit_types(self.config.mix, {n: e.local for n, e in self.editors.items()}, chosen is not None,
                                  len(self.config.mix), self.config.seed, clip["clip_id"], barred)
        written = [0]

        def attempts() -> Iterator[tuple[int, str]]:
            """Edit types in their drawn order until pairs_per_clip pairs are written: a type a gate drops (or
            whose editor fails) is replaced by the next one, so a clip's yield is not lost to one bad draw."""
            for it in enumerate(types):
                if written[0] >= self.config.pairs_per_clip:
                    return
                yield it

        def attempt_pair(it: tuple[int, str]) -> tuple[dict[str, Any] | None, dict[str, GateValue]]:
            row, values = self.make_pair(inp, it[1], it[0], chosen, root)
            written[0] += row is not None
            return row, values

        made, errors = self.isolate(attempts(), attempt_pair, lambda it: f"{clip['clip_id']}/{it[1]}/{it[0]}", attempt)
        out.errors += errors
        out.pairs = [row for row, _ in made if row is not None]
        counts = {"pairs_made": len(out.pairs), "pairs_dropped": sum(row is None for row, _ in made),
                  **gate_counts([values for _, values in made])}
        for signal, value in counts.items():
            out.scores.append(self.stamp({"clip_id": clip["clip_id"], "signal": signal, "value": float(value),
                                          "passed": None}))
        return out

    def object_mask(self, obj: dict[str, Any], frames: list[dict[str, Any]], root: Path, t: int, h: int, w: int
                    ) -> np.ndarray:
        """The object's (T, H, W) bool mask at the clip's size: object_frames RLE, else the row's own RLE
        list, else its mask file; an object with none of them (boxes only) has an empty mask."""
        if any(f["mask_rle"] is not None for f in frames):
            frames = sorted(frames, key=lambda f: f["frame_index"])
            masks = [None if f["mask_rle"] is None else _decode(f["mask_rle"], f["mask_height"], f["mask_width"])
                     for f in frames]
            return dense_track([f["frame_index"] for f in frames], masks, t, h, w)
        if obj.get("mask_rle"):
            masks = [None if r is None else _decode(r, obj["mask_height"], obj["mask_width"]) for r in obj["mask_rle"]]
            return dense_track(obj["frame_indices"], masks, t, h, w)
        if obj.get("mask_uri"):
            track = read_mask_file(resolve_uri(root, obj["mask_uri"]))  # (T0, h, w): one mask per clip frame
            return dense_track(range(len(track)), list(track), t, h, w)
        return np.zeros((t, h, w), bool)

    def make_pair(self, inp: ClipInput, edit_type: str, index: int, chosen: str | None, root: Path
                  ) -> tuple[dict[str, Any] | None, dict[str, GateValue]]:
        """One pair of `edit_type` from the clip: its row (None when a gate dropped it: no files written) and
        its gate values."""
        editor = self.editors[edit_type]
        object_id = chosen if editor.local else None
        clip_id = inp.clip["clip_id"]
        pid = pair_id(clip_id, edit_type, object_id, self.config.seed, index)
        mask = object_class = others = None
        if object_id is not None:
            mask, object_class = inp.masks.get(object_id), inp.classes.get(object_id)
            if len(inp.masks) > 1:
                others = np.logical_or.reduce([m for oid, m in inp.masks.items() if oid != object_id])  # (T, H, W)
        result = editor.edit(EditInput(inp.frames, inp.fps, mask, object_id, object_class, pair_seed(pid), others,
                                       inp.text_overlay))
        instruction = make_instruction(result.edit_type, result.slots, pair_seed(pid), self._rewrite())
        source, target = result.frames(inp.frames)
        values = evaluate_pair(source, target, result.mask, result.region, self.gates,
                               track=(inp.frames, mask) if mask is not None else None)
        values["clip_direction"] = clip_direction_gate(
            self.clip, evenly(source, self.config.gate_frames),
            evenly(target, self.config.gate_frames), *direction_texts(result.edit_type, result.slots), self.gates)
        values["vlm"] = vlm_instruction_gate(self._check(), source, target, instruction.text, self.gates)
        if failed(values) and self.config.drop_failed:
            LOG.info("pair %s (%s of %s) dropped: failed %s", pid, edit_type, clip_id, ", ".join(failed(values)))
            return None, values
        uris, files = self._write(result, inp, pid, root)
        t, h, w = inp.frames.shape[:3]
        row = {
            "pair_id": pid, "clip_id": clip_id, "edit_type": result.edit_type, "instruction": instruction.text,
            **uris, "gates_passed": gates_passed(passed_columns(values)),
            "split": assign_split(inp.clip["video_id"], self.splits), "object_id": object_id,
            "edit_params": to_json({**self._params(editor, result, instruction, pair_seed(pid), inp.cut),
                                    "crf": files.crf, "kept_psnr_file_db": files.kept_psnr}),
            "frames": t, "fps": float(inp.fps), "width": w, "height": h, **gate_columns(values, result.region),
        }
        return self.stamp(row, source=editor), values

    def _write(self, result: EditResult, inp: ClipInput, pid: str, root: Path
               ) -> tuple[dict[str, str | None], PairFiles]:
        """Write the pair's files; the clip's own file stands for an unchanged side unless max_frames cut it.
        Also what write_pair wrote (its CRF lowered until a local edit's kept pixels match the unchanged side)."""
        video_dir = f"{PAIRS_DIR}/{inp.clip['video_id']}"
        side = "source" if result.source is None else "target"
        written, unchanged = None, inp.frames  # the unchanged side's pixels as stored: the clip decoded
        if inp.cut:  # the clip file is longer than the pair: write its first frames as the unchanged side
            written = write_clip(root / video_dir / f"{pid}.{side}.mp4", inp.frames, inp.fps, self.config.crf)
            unchanged = read_frames(written)
        files = write_pair(result, root / video_dir, pid, inp.fps, self.config.crf, unchanged, self.gates.kept_margin_px)
        uri = lambda p: f"{video_dir}/{p.name}"  # noqa: E731
        source = uri(files.source) if files.source else inp.clip["uri"]
        target = uri(files.target) if files.target else inp.clip["uri"]
        if written is not None:
            source, target = (uri(written), target) if side == "source" else (source, uri(written))
        uris = {"source_uri": source, "target_uri": target, "mask_uri": uri(files.mask) if files.mask else None}
        return uris, files

    def _params(self, editor: Editor, result: EditResult, instruction: Instruction, seed: int, cut: bool
                ) -> dict[str, Any]:
        params: dict[str, Any] = {
            **result.params, "editor": editor.name, "editor_version": result.editor_version, "seed": seed,
            "region": result.region, "slots": result.slots, "instruction_template": instruction.template,
            "instruction_rewritten": instruction.rewritten, "max_frames_cut": cut,
        }
        if instruction.rewrite_note:
            params["rewrite_note"] = instruction.rewrite_note
        if self.clip is not None:
            params["clip_gate_model"] = f"{self.clip.model_name}@{self.clip.weights_id}"
        if self.vlm is not None:
            params["vlm_model"] = f"served:{self.vlm.config.model}"
        return params

    def _rewrite(self) -> Rewrite | None:
        """The instruction rewrite through the VLM (a paraphrase), or None without one."""
        if self.vlm is None:
            return None
        client = self.vlm
        return lambda text, slots: client.ask(REWRITE_PROMPT.format(text=text), NO_FRAMES, _Rewritten).instruction

    def _check(self) -> VlmCheck | None:
        """The VLM instruction check as filters.pair_gates.VlmCheck (1.0 when the VLM says it matches), or None."""
        if self.vlm is None:
            return None
        client, n = self.vlm, self.config.gate_frames

        def check(source: np.ndarray, target: np.ndarray, instruction: str) -> float:
            return 1.0 if client.check_instruction(evenly(source, n), evenly(target, n), instruction).matches else 0.0

        return check


def _decode(counts: str, height: int | None, width: int | None) -> np.ndarray:
    if not height or not width:
        raise EditError(f"mask RLE without its size ({height}x{width})")
    return rle_decode(counts, int(height), int(width))
