"""The pairs stage on tiny clip files: edit types, fidelity of the written files, gate values, drop_failed,
splits, random-init objects, bad inputs (empty masks, border, one frame, no objects, a missing mask file),
schema conformance through the manifest writer, determinism, and the objects stage's own rows as input."""

from __future__ import annotations

import errno
import http.server
import json
import resource
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from _moving_disc import moving_disc_clip, texture

from curation.editors import MaskFileError, read_mask_file
from curation.models.clip import ClipConfig
from curation.models.vlm import VlmConfig
from curation.models.weights import WeightsConfig
from curation.pair_rows import choose_edit_types, dense_track
from curation.splits import SplitConfig, assign_split
from curation.stage import WorkUnit
from curation.stages.objects import ObjectsConfig, ObjectsStage
from curation.stages.pairs import PAPER_MIX, PairsConfig, PairsStage
from filters.pair_gates import PairGateConfig, edit_regions, psnr
from manifests import SCHEMAS, ManifestWriter, read_table
from manifests.media.decode import read_frames
from manifests.media.encode import VideoWriter
from manifests.media.masks import write_mask_file
from manifests.rle import rle_encode
from manifests.schema import PAIR_GATES, PSNR_CAP

H, W, T = 48, 64, 8
PROVENANCE = {"stage": "objects", "stage_version": "1", "model_name": "none", "weights_id": "none"}


def disc_clip(centre, radius: int = 8, frames: int = T) -> tuple[np.ndarray, np.ndarray]:
    """(frames (T, H, W, 3), masks (T, H, W)): a red textured disc at centre(t) over a panning texture."""
    world = texture(1, H, W + 2 * frames, 2)
    skin = texture(2, H, W, 1)
    skin[..., 0] = 220
    yy, xx = np.mgrid[:H, :W]
    out, masks = [], []
    for t in range(frames):
        cx, cy = centre(t)
        m = (xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2
        f = world[:, 2 * t : 2 * t + W].copy()
        f[m] = skin[m]
        out.append(f)
        masks.append(m)
    return np.stack(out), np.stack(masks)


def write_video(root: Path, name: str, frames: np.ndarray) -> str:
    with VideoWriter(root / name, fps=25.0, crf=10) as w:
        for f in frames:
            w.write(f)
    return name


def clip_row(clip_id: str, video_id: str, uri: str | None, status: str = "ok") -> dict:
    return {"clip_id": clip_id, "video_id": video_id, "status": status, "uri": uri, "fps": 25.0}


def object_rows(clip_id: str, oid: str, masks: np.ndarray, indices: list[int], weights_id: str = "none",
                scale: int = 2) -> tuple[dict, list[dict]]:
    """An objects row and its object_frames rows as the objects stage makes them: masks sampled at
    `indices`, stored at 1/scale of the clip's size (the objects stage decodes smaller)."""
    small = masks[:, ::scale, ::scale]
    h, w = small.shape[1:]
    prov = {**PROVENANCE, "weights_id": weights_id}
    row = {"object_id": oid, "clip_id": clip_id, "track_id": 1, "class_name": "disc", "confidence": 0.9,
           "frame_indices": indices, "boxes": [[0.0, 0.0, 1.0, 1.0]] * len(indices), "mask_rle": None,
           "mask_height": h, "mask_width": w, "mask_uri": None, "temporal_iou": 0.8, **prov}
    frames = [{"object_id": oid, "clip_id": clip_id, "frame_index": i, "box": [0.0, 0.0, 1.0, 1.0],
               "mask_rle": rle_encode(small[i]), "mask_height": h, "mask_width": w, **prov} for i in indices]
    return row, frames


def run(root: Path, tables: dict, **config) -> dict:
    stage = PairsStage(PairsConfig(**config))
    stage.setup()
    return stage.process(WorkUnit("b000000", [], str(root), tables=tables)).rows


@pytest.fixture(scope="module")
def unit(tmp_path_factory) -> WorkUnit:
    root = tmp_path_factory.mktemp("out")
    disc, disc_masks = disc_clip(lambda t: (14 + 4 * t, 24))
    square = np.zeros_like(disc_masks)
    square[:, 36:42, 50:56] = True  # a second, smaller object: `others` for the disc's edits
    border, border_masks = disc_clip(lambda t: (2 + t, 40), radius=9)  # cut by the left and bottom edges
    plain = np.repeat(texture(3, H, W, 2)[None], T, axis=0)
    files = {name: write_video(root, f"{name}.mp4", f) for name, f in
             (("disc", disc), ("border", border), ("plain", plain), ("one", disc[:1]))}
    clips = [clip_row("disc", "v-disc", files["disc"]), clip_row("border", "v-border", files["border"]),
             clip_row("empty", "v-empty", files["disc"]), clip_row("noobj", "v-noobj", files["plain"]),
             clip_row("one", "v-one", files["one"]), clip_row("missing", "v-missing", files["disc"]),
             clip_row("noise", "v-noise", files["disc"]), clip_row("rejected", "v-disc", files["disc"], "rejected"),
             clip_row("unextracted", "v-disc", None)]
    objects, frames = [], []
    for row, per_frame in (
        object_rows("disc", "disc-disc", disc_masks, [0, 2, 4, 6]),  # sparse: every other frame
        object_rows("disc", "disc-square", square, list(range(T))),
        object_rows("border", "border-disc", border_masks, list(range(T))),
        object_rows("empty", "empty-disc", np.zeros_like(disc_masks), list(range(T))),
        object_rows("noise", "noise-disc", disc_masks, list(range(T)), weights_id="random-init"),
    ):
        objects.append(row)
        frames += per_frame
    objects.append({**object_rows("missing", "missing-disc", disc_masks, [])[0], "mask_uri": "masks/gone.npz"})
    objects.append({**object_rows("missing", "missing-escape", disc_masks, [])[0], "mask_uri": "../outside.npz"})
    return WorkUnit("b000000", [], str(root), tables={"clips": clips, "objects": objects, "object_frames": frames})


UNIT_CONFIG = {"pairs_per_clip": 5, "editors": {"background": {"mode": "replace"}}}
"""A photo backdrop: a blur of this soft texture is a faint change, too faint for the test's 30 dB."""


@pytest.fixture(scope="module")
def out(unit) -> dict:
    return run(Path(unit.out_root), unit.tables, **UNIT_CONFIG)


def _pairs(out: dict, clip_id: str) -> dict[str, dict]:
    return {r["edit_type"]: r for r in out["edit_pairs"] if r["clip_id"] == clip_id}


def test_five_edit_types_with_their_files(out, unit):
    disc = _pairs(out, "disc")
    assert set(disc) == {"removal", "addition", "recolour", "background", "style"}
    root = Path(unit.out_root)
    for r in out["edit_pairs"]:
        for uri in (r["source_uri"], r["target_uri"], r["mask_uri"]):
            assert uri is None or (not Path(uri).is_absolute() and (root / uri).is_file())
        assert r["frames"] == T and (r["width"], r["height"]) == (W, H) and r["fps"] == 25.0
        params = json.loads(r["edit_params"])
        assert params["editor"] == r["edit_type"] and params["instruction_template"].startswith(r["edit_type"])
        assert r["stage"] == "pairs" and r["weights_id"] == "none"
        assert r["stage_version"] == f"{PairsStage.version}+{r['edit_type']}-1"
    # local edits use the larger object, the clip's own file is the unchanged side
    assert {disc[t]["object_id"] for t in ("removal", "addition", "recolour", "background")} == {"disc-disc"}
    assert disc["style"]["object_id"] is None and disc["style"]["mask_uri"] is None
    assert disc["removal"]["source_uri"] == "disc.mp4" and disc["addition"]["target_uri"] == "disc.mp4"
    assert disc["removal"]["target_uri"] == f"pairs/v-disc/{disc['removal']['pair_id']}.target.mp4"
    counts = {(s["clip_id"], s["signal"]): s["value"] for s in out["scores"]}
    assert counts[("disc", "pairs_made")] == 5 and counts[("disc", "pairs_dropped")] == 0


def test_outside_a_local_edit_the_files_match_within_codec_error(out, unit):
    root = Path(unit.out_root)
    for edit_type, r in _pairs(out, "disc").items():
        if edit_type == "style":
            continue
        source, target = read_frames(root / r["source_uri"]), read_frames(root / r["target_uri"])
        mask = read_mask_file(root / r["mask_uri"])
        region = json.loads(r["edit_params"])["region"]
        edited, kept = edit_regions(mask, region, mask.shape, PairGateConfig().kept_margin_px)
        # a background edit keeps only the disc's interior, a few pixels from a whole-frame colour change
        # whose 4:2:0 chroma blocks straddle it: the gates' own floor (35 dB) there, 38 dB elsewhere
        floor = PairGateConfig().min_psnr_kept if region == "outside" else 38.0
        assert psnr(source, target, kept) >= floor, edit_type
        assert psnr(source, target, edited) < 30.0, edit_type


def test_gate_values_are_stored_and_agree_with_gates_passed(out):
    cfg = PairGateConfig()
    for r in out["edit_pairs"]:
        notes = json.loads(r["gate_notes"])
        assert set(notes) == {g for g in PAIR_GATES if r[f"gate_{g}"] is None}
        assert "clip_direction" in notes and "vlm" in notes and notes["vlm"] == "skipped: no VLM configured"
        passed = set(r["gates_passed"])
        assert ("flicker" in passed) == (r["gate_flicker"] <= cfg.max_flicker)
        strong = r["gate_psnr_edited"] <= cfg.max_psnr_edited or r["gate_ssim_edited"] <= cfg.max_ssim_edited
        assert ("psnr_edited" in passed) == strong
        if r["mask_uri"] is None:
            assert r["gate_mask_area"] is None and notes["mask_area"] == "not applicable to a global edit"
            assert passed == {"flicker", "psnr_edited"}
        else:
            assert ("mask_area" in passed) == (cfg.min_mask_area <= r["gate_mask_area"] <= cfg.max_mask_area)
            assert ("mask_iou" in passed) == (r["gate_mask_iou"] >= cfg.min_mask_iou)
            assert ("psnr_kept" in passed) == (r["gate_psnr_kept"] >= cfg.min_psnr_kept)
            assert passed == {"flicker", "psnr_edited", "mask_area", "mask_iou", "psnr_kept", "connected", "area_cv",
                              "boundary_edge"}  # drop_failed on
            assert 0 < r["gate_psnr_kept"] <= PSNR_CAP and r["gate_psnr_edited"] < r["gate_psnr_kept"]


def test_rows_conform_to_the_schema_through_the_writer(out, tmp_path):
    rows = out["edit_pairs"]
    assert all(set(r) == set(SCHEMAS["edit_pairs"].names) for r in rows)
    ManifestWriter(tmp_path, "edit_pairs").write("b000000", rows)
    back = sorted(read_table(tmp_path, "edit_pairs").to_pylist(), key=lambda r: r["pair_id"])
    assert back == sorted(rows, key=lambda r: r["pair_id"])


def test_bad_inputs_give_errors_rows_or_global_edits_only(out):
    errors = {e["input"]: e for e in out["errors"]}
    assert set(errors) == {"one", "missing/missing-disc", "missing/missing-escape"}
    assert errors["one"]["error_class"] == "EditError" and "1 frame" in errors["one"]["message"]
    assert errors["missing/missing-disc"]["error_class"] == "MaskFileError"
    assert "no such mask file" in errors["missing/missing-disc"]["message"]
    assert errors["missing/missing-escape"]["message"] == "uri '../outside.npz': escapes the dataset root"
    # an empty mask, no objects, a missing mask file: only the global edit; the border disc gets local edits
    for clip_id in ("empty", "noobj", "missing"):
        assert set(_pairs(out, clip_id)) == {"style"}, clip_id
    border = _pairs(out, "border")
    assert {"removal", "recolour"} <= set(border) and border["removal"]["object_id"] == "border-disc"
    assert not {r["clip_id"] for r in out["edit_pairs"]} & {"one", "rejected", "unextracted"}


def test_random_init_objects_are_used_only_when_allowed(out, unit, tmp_path):
    assert set(_pairs(out, "noise")) == {"style"}
    tables = {**unit.tables, "clips": [c for c in unit.tables["clips"] if c["clip_id"] == "noise"]}
    allowed = run(Path(unit.out_root), tables, **UNIT_CONFIG, use_random_init_objects=True)
    assert {r["object_id"] for r in allowed["edit_pairs"]} == {"noise-disc", None}
    assert len(allowed["edit_pairs"]) == 5


def test_the_same_unit_gives_the_same_rows(out, unit):
    again = run(Path(unit.out_root), unit.tables, **UNIT_CONFIG)
    assert again == out


def test_drop_failed_writes_no_files_and_counts_the_pair(unit, tmp_path):
    root = tmp_path / "drop"
    root.mkdir()
    write_video(root, "plain.mp4", np.repeat(texture(3, H, W, 2)[None], T, axis=0))
    tables = {"clips": [clip_row("noobj", "v-noobj", "plain.mp4")]}
    never = {"max_psnr_edited": 0.0, "max_ssim_edited": 0.0}  # no edit is strong enough
    dropped = run(root, tables, gates=never)
    assert dropped["edit_pairs"] == [] and not (root / "pairs").exists()
    counts = {s["signal"]: s["value"] for s in dropped["scores"]}
    assert counts == {"pairs_made": 0.0, "pairs_dropped": 1.0,  # and per gate: how many pairs it judged and failed
                      "pairs_gated/psnr_edited": 1.0, "pairs_failed/psnr_edited": 1.0,
                      "pairs_gated/flicker": 1.0, "pairs_failed/flicker": 0.0}
    kept = run(root, tables, gates=never, drop_failed=False)["edit_pairs"]
    assert len(kept) == 1 and "psnr_edited" not in kept[0]["gates_passed"] and kept[0]["gate_psnr_edited"] > 0
    assert (root / kept[0]["target_uri"]).is_file()


def test_a_machine_error_fails_the_unit_instead_of_becoming_errors_rows(tmp_path):
    """File too large (a real RLIMIT_FSIZE, EFBIG) is the machine's fault, not the clip's: process raises, and
    no pair file exists under its final name."""
    write_video(tmp_path, "plain.mp4", np.repeat(texture(3, H, W, 2)[None], T, axis=0))
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of a signal
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, hard))
    try:
        with pytest.raises(OSError) as info:
            run(tmp_path, {"clips": [clip_row("noobj", "v", "plain.mp4")]}, drop_failed=False)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert info.value.errno == errno.EFBIG
    assert not [p for p in (tmp_path / "pairs").rglob("*") if p.is_file()]  # no pair file, no temp file


def test_splits_follow_the_source_video(tmp_path):
    write_video(tmp_path, "plain.mp4", np.repeat(texture(3, H, W, 2)[None], 2, axis=0))
    ratios = {"train": 0.5, "val": 0.25, "test": 0.25, "salt": "pairs-test"}
    clips = [clip_row(f"c{v}-{k}", f"video{v}", "plain.mp4") for v in range(8) for k in range(2)]
    rows = run(tmp_path, {"clips": clips}, splits=ratios, drop_failed=False)["edit_pairs"]
    assert len(rows) == len(clips)
    by_video: dict[str, set[str]] = {}
    for r in rows:
        video = r["clip_id"].split("-")[0].replace("c", "video")
        by_video.setdefault(video, set()).add(r["split"])
        assert r["split"] == assign_split(video, SplitConfig.from_dict(ratios))
    assert all(len(s) == 1 for s in by_video.values())
    assert len({s for v in by_video.values() for s in v}) >= 2


def _disc_with_mask_file(root: Path) -> dict:
    """Tables of one 8-frame disc clip whose object's mask lives in a mask file."""
    frames, masks = disc_clip(lambda t: (14 + 4 * t, 24))
    write_video(root, "disc.mp4", frames)
    write_mask_file(root / "masks/disc.npz", masks)
    obj = {**object_rows("disc", "disc-disc", masks, [])[0], "mask_uri": "masks/disc.npz"}
    return {"clips": [clip_row("disc", "v", "disc.mp4")], "objects": [obj]}


def test_mask_files_and_clips_longer_than_max_frames(tmp_path):
    """An object whose mask lives in a file; a clip cut to max_frames writes its unchanged side too."""
    (r,) = run(tmp_path, _disc_with_mask_file(tmp_path), mix={"recolour": 1.0}, max_frames=5)["edit_pairs"]
    assert r["object_id"] == "disc-disc" and r["frames"] == 5 and json.loads(r["edit_params"])["max_frames_cut"]
    assert r["source_uri"] == f"pairs/v/{r['pair_id']}.source.mp4"  # the first 5 frames, not the 8-frame file
    assert len(read_frames(tmp_path / r["source_uri"])) == len(read_frames(tmp_path / r["target_uri"])) == 5


CLIP_TINY = {"arch": "ViT-S-32", "image_size": 64, "batch": 8}


def test_clip_gate_skips_random_init_and_scores_a_weights_file(tmp_path):
    tables = _disc_with_mask_file(tmp_path)
    random = ClipConfig(**CLIP_TINY, weights=WeightsConfig(weights="none.pt", allow_random_init=True))
    (r,) = run(tmp_path, tables, mix={"recolour": 1.0}, clip=random)["edit_pairs"]
    assert r["gate_clip_direction"] is None
    assert json.loads(r["gate_notes"])["clip_direction"] == "skipped: CLIP weights are random-init, not trained"
    assert json.loads(r["edit_params"])["clip_gate_model"] == "open_clip-ViT-S-32@random-init"
    # a weights file is what real weights look like to the stage (these are untrained: the value is noise)
    import open_clip
    import torch

    torch.manual_seed(0)
    torch.save(open_clip.create_model("ViT-S-32", force_image_size=64).state_dict(), tmp_path / "clip.pt")
    weights = ClipConfig(**CLIP_TINY, weights=WeightsConfig(weights=str(tmp_path / "clip.pt")))
    gates = {"min_clip_direction": -1.0}  # any cosine passes
    (r,) = run(tmp_path, tables, mix={"recolour": 1.0}, clip=weights, gates=gates)["edit_pairs"]
    assert -1.0 <= r["gate_clip_direction"] <= 1.0 and "clip_direction" in r["gates_passed"]
    assert "clip_direction" not in json.loads(r["gate_notes"])
    assert json.loads(r["edit_params"])["clip_gate_model"].startswith("open_clip-ViT-S-32@")
    assert not json.loads(r["edit_params"])["clip_gate_model"].endswith("random-init")


class FakeVlm(http.server.BaseHTTPRequestHandler):
    """An OpenAI-compatible server on 127.0.0.1 (the test double at the outside boundary): /<scenario>/v1/...
    "yes" paraphrases and says the pair matches, "no" says it does not; "broken" answers HTTP 500, "garbled"
    text that is not JSON, "slow" after the client's timeout."""

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        scenario = self.path.strip("/").split("/")[0]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][0]["content"][0]["text"]
        self.server.prompts.append((scenario, prompt))
        if "Rewrite" in prompt:
            answer = {"instruction": "Paint the disc another colour."}
        else:
            answer = {"matches": scenario == "yes", "reason": "looked at it"}
        if scenario == "slow":
            time.sleep(3.0)  # far past the timeout, so the answer never wins on a loaded machine
        content = "sure! the instruction is fine" if scenario == "garbled" else json.dumps(answer)
        message = {"role": "assistant", "content": content}
        payload = json.dumps({"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}).encode()
        self.send_response(500 if scenario == "broken" else 200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture(scope="module")
def vlm_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeVlm)
    srv.daemon_threads = True
    srv.prompts = []
    srv.handle_error = lambda request, address: None  # a client that timed out and left is expected here
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _vlm(server, scenario: str) -> VlmConfig:
    return VlmConfig(base_url=f"http://127.0.0.1:{server.server_port}/{scenario}/v1", model="tiny-vlm",
                     api_key_env=None, max_retries=0, timeout_s=0.2 if scenario == "slow" else 10.0)


def test_vlm_rewrites_the_instruction_and_gates_the_pair(vlm_server, tmp_path):
    tables = _disc_with_mask_file(tmp_path)
    (r,) = run(tmp_path, tables, mix={"recolour": 1.0}, vlm=_vlm(vlm_server, "yes"), gate_frames=2)["edit_pairs"]
    params = json.loads(r["edit_params"])
    assert r["instruction"] == "Paint the disc another colour." and params["instruction_rewritten"]
    assert r["gate_vlm"] == 1.0 and "vlm" in r["gates_passed"] and params["vlm_model"] == "served:tiny-vlm"
    asked = [p for s, p in vlm_server.prompts if s == "yes"]
    assert len(asked) == 2 and "Paint the disc another colour." in asked[1]  # the check sees the rewrite
    # the VLM says the instruction does not match: the pair fails its gate and is dropped
    out = run(tmp_path, tables, mix={"recolour": 1.0}, vlm=_vlm(vlm_server, "no"), gate_frames=2)
    assert out["edit_pairs"] == [] and {s["signal"]: s["value"] for s in out["scores"]}["pairs_dropped"] == 1.0


@pytest.mark.parametrize("scenario, why", [("broken", "HTTP 500"), ("garbled", "not JSON"), ("slow", "timed out")])
def test_a_failing_vlm_costs_only_the_rewrite_and_the_check(vlm_server, tmp_path, scenario, why):
    (r,) = run(tmp_path, _disc_with_mask_file(tmp_path), mix={"recolour": 1.0},
               vlm=_vlm(vlm_server, scenario))["edit_pairs"]
    params = json.loads(r["edit_params"])
    assert not params["instruction_rewritten"] and why in params["rewrite_note"]
    assert r["instruction"].endswith(".") and "disc" in r["instruction"]  # the template's text
    assert r["gate_vlm"] is None and why in json.loads(r["gate_notes"])["vlm"] and "vlm" not in r["gates_passed"]


def test_objects_stage_rows_feed_the_pairs_stage(tmp_path):
    frames, _ = moving_disc_clip([(30 + 4 * t, 48.0) for t in range(16)])
    write_video(tmp_path, "moving.mp4", frames)
    unit = WorkUnit("b000001", [], str(tmp_path), tables={"clips": [clip_row("moving", "v", "moving.mp4")]})
    objects = ObjectsStage(ObjectsConfig()).run(unit)  # the proposer: weights "none", so usable
    assert objects.rows("objects")
    rows = run(tmp_path, objects.tables, mix={"removal": 1.0, "style": 1.0})["edit_pairs"]
    removal = {r["edit_type"]: r for r in rows}["removal"]
    assert removal["object_id"] in {o["object_id"] for o in objects.rows("objects")}
    assert "psnr_kept" in removal["gates_passed"]


@pytest.mark.parametrize("bad, words", [
    ({"mix": {"teleport": 1.0}}, "unknown edit type"),
    ({"mix": {"style": -1.0}}, "must be finite"),
    ({"mix": {"style": 0.0}}, "sum to > 0"),
    ({"editors": {"recolour": {"colour": "plaid"}}}, "unknown colour"),
    ({"editors": {"style": {"brush": 3}}}, "unexpected keyword"),
    ({"gates": {"min_psnr_kep": 30}}, "unknown pair gate"),
    ({"splits": {"train": 0.5}}, "sum to 1"),
])
def test_config_problems_are_one_line_errors(bad, words):
    with pytest.raises(ValueError) as info:
        PairsConfig(**bad)
    message = info.value.errors()[0]["msg"]
    assert words in message and "\n" not in message


def test_sparse_tracks_fill_the_sampling_gaps_not_a_lost_object():
    def present(indices: list[int], num_frames: int) -> list[int]:
        masks = [np.full((2, 2), True)] * len(indices)  # 2x2 masks brought to 4x4
        track = dense_track(indices, masks, num_frames, 4, 4)
        assert track.shape == (num_frames, 4, 4) and all(m.all() or not m.any() for m in track)
        return [t for t in range(num_frames) if track[t].any()]

    assert present([0, 1, 3, 4, 6], 8) == [0, 1, 2, 3, 4, 5, 6]  # strides of 1 and 2: every gap filled
    # stride 3: gaps filled, the 9-frame gap (object lost) left empty, half a stride past the last sample
    assert present([0, 3, 6, 15], 18) == [0, 1, 2, 3, 4, 5, 6, 15, 16]
    assert present([2, 3], 3) == [2]  # samples past a clip cut to max_frames are ignored
    with pytest.raises(MaskFileError):
        dense_track([-1], [np.ones((2, 2), bool)], 4, 4, 4)


def test_edit_types_are_a_seeded_weighted_draw_without_replacement():
    local = {"removal": True, "recolour": True, "style": False, "background": True}
    mix = {"removal": 1.0, "recolour": 1.0, "style": 1.0, "background": 0.0}

    def draw(seed: int, clip: str, has_object: bool = True, k: int = 2) -> list[str]:
        return choose_edit_types(mix, local, has_object, k, seed, clip)

    assert draw(0, "a") == draw(0, "a") and len(set(draw(0, "a"))) == 2
    assert {tuple(draw(s, c)) for s in range(4) for c in "abcd"} != {tuple(draw(0, "a"))}  # seeds and clips vary
    assert sorted(draw(0, "a", k=9)) == ["recolour", "removal", "style"]  # a zero weight is never drawn
    assert draw(3, "b", has_object=False, k=3) == ["style"]  # local types need a usable object
    assert sum(choose_edit_types({"style": 9.0, "removal": 1.0}, local, True, 1, s, "x") == ["style"]
               for s in range(300)) > 240  # about 90 % style


def test_gate_options_keep_their_types():
    gates = PairsConfig(gates={"kept_margin_px": 2, "min_psnr_kept": 30}).gate_config
    assert gates.kept_margin_px == 2 and isinstance(gates.kept_margin_px, int) and gates.min_psnr_kept == 30.0


def test_default_mix_is_the_papers():
    cfg = PairsConfig()
    assert cfg.mix == PAPER_MIX and sum(cfg.mix.values()) == pytest.approx(1.0) and "generative" not in cfg.mix


def test_a_dropped_draw_is_replaced_by_the_next_type(tmp_path):
    """pairs_per_clip counts written pairs: a type a gate drops gives way to the next type drawn."""
    uri = write_video(tmp_path, "plain.mp4", np.repeat(texture(3, H, W, 2)[None], T, axis=0))
    clips = [clip_row(f"c{i}", f"v{i}", uri) for i in range(6)]
    clean = [{"clip_id": c["clip_id"], "signal": "text_overlay", "value": 0.0, "passed": True, **PROVENANCE}
             for c in clips]
    config = {"mix": {"style": 1.0, "add_text": 1.0}, "pairs_per_clip": 1,
              "editors": {"style": {"style": "warm"}, "add_text": {"text": "OK", "kind": "sign"}},
              "gates": {"max_psnr_edited": 15.0, "max_ssim_edited": 0.0}}  # a mild grade fails, glyphs pass
    out = run(tmp_path, {"clips": clips, "scores": clean}, **config)
    assert out["errors"] == [] and sorted(r["clip_id"] for r in out["edit_pairs"]) == [c["clip_id"] for c in clips]
    assert {r["edit_type"] for r in out["edit_pairs"]} == {"add_text"}
    counts = {(s["clip_id"], s["signal"]): s["value"] for s in out["scores"]}
    dropped = [counts[(c["clip_id"], "pairs_dropped")] for c in clips]
    assert set(dropped) == {0.0, 1.0}  # style drawn first on some clips (dropped, then replaced), second on others
    assert all(counts[(c["clip_id"], "pairs_made")] == 1.0 for c in clips)
