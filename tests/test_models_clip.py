"""CLIP scoring: the pure score math, and the stage on tiny clip files with a random-init open_clip model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _moving_disc import T, moving_disc_clip

from curation.models.clip import ClipConfig, clip_scores, resize_short_side
from curation.models.weights import WeightsConfig
from curation.stage import WorkUnit
from curation.stages.clip_scores import ClipScoresConfig, ClipScoresStage, embeddings_uri, rescore
from manifests import SCHEMAS
from manifests.media.encode import VideoWriter


def _unit(e: np.ndarray) -> np.ndarray:
    return e / np.linalg.norm(e, axis=-1, keepdims=True)


@pytest.mark.parametrize("height,width,size", [(360, 640, 90), (448, 224, 224), (300, 500, 224), (60, 80, 96)])
def test_resize_on_the_device_matches_cv2_area(height, width, size):
    """The tensor resize (short side to `size`, centre crop) against the per-frame cv2 INTER_AREA it replaced: equal
    to rounding at whole-number factors, within a few levels on average otherwise."""
    import cv2
    import torch

    frame = np.random.default_rng(height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    frame = cv2.GaussianBlur(frame, (0, 0), 2)  # photo-like: neighbouring pixels related
    got = resize_short_side(torch.from_numpy(frame).permute(2, 0, 1)[None].float(), size)[0].permute(1, 2, 0).numpy()
    scale = size / min(height, width)
    r = cv2.resize(frame, (max(size, round(width * scale)), max(size, round(height * scale))),
                   interpolation=cv2.INTER_AREA)
    y, x = (r.shape[0] - size) // 2, (r.shape[1] - size) // 2
    want = r[y : y + size, x : x + size].astype(np.float32)
    assert got.shape == want.shape == (size, size, 3)
    diff = np.abs(got - want)
    whole = (min(height, width) / size).is_integer()
    assert diff.max() <= (1.0 if whole else 40.0) and diff.mean() < (0.5 if whole else 3.0)


def test_score_math_on_known_vectors():
    a, b = np.eye(3, dtype=np.float32)[0], np.eye(3, dtype=np.float32)[1]
    frames = np.stack([a, a, b])  # (T, D): two equal frames then an orthogonal one
    aesthetic = np.stack([a, b])
    got = clip_scores(frames, a, aesthetic)
    assert got["clip_consistency"] == pytest.approx(0.5)  # cos 1 then cos 0
    assert got["clip_text_alignment"] == pytest.approx(float(_unit(2 * a + b) @ a))
    assert got["clip_aesthetic"] == pytest.approx((1 + 1 - 1) / 3)
    one = clip_scores(frames[:1], None, aesthetic)
    assert one["clip_consistency"] is None and one["clip_text_alignment"] is None


@pytest.fixture(scope="module")
def stage() -> ClipScoresStage:
    cfg = ClipScoresConfig(clip=ClipConfig(arch="ViT-S-32", image_size=64, batch=4,
                                           weights=WeightsConfig(weights="none.pt", allow_random_init=True)),
                           frames_per_clip=4, text="a disc moving over a texture")
    s = ClipScoresStage(cfg)
    s.setup()
    return s


def test_stage_scores_embeddings_file_and_errors(stage, tmp_path):
    frames, _ = moving_disc_clip([(30 + 4 * t, 48.0) for t in range(T)])
    for name, clip in (("moving.mp4", frames), ("one.mp4", frames[:1])):
        with VideoWriter(tmp_path / name, fps=25.0) as w:
            for f in clip:
                w.write(f)
    (tmp_path / "broken.mp4").write_bytes(b"")
    clips = [{"clip_id": n, "status": "ok", "uri": f"{n}.mp4"} for n in ("moving", "one", "broken")]
    out = stage.process(WorkUnit("b000007", [], str(tmp_path), tables={"clips": clips})).rows
    rows = {(r["clip_id"], r["signal"]): r for r in out["scores"]}
    assert set(rows) == {("moving", "clip_text_alignment"), ("moving", "clip_consistency"), ("moving", "clip_aesthetic"),
                         ("one", "clip_text_alignment"), ("one", "clip_aesthetic")}  # one frame: no consistency
    for r in rows.values():
        assert set(r) == set(SCHEMAS["scores"].names) and r["passed"] is None
        assert (r["weights_id"], r["model_name"], r["stage_version"]) == ("random-init", "open_clip-ViT-S-32", "1+clip-2")
        assert -1.0 <= r["value"] <= 1.0 or r["signal"] == "clip_aesthetic"
    assert [e["input"] for e in out["errors"]] == ["broken"]
    stored = {r["clip_id"]: r for r in out["clip_embeddings"]}
    assert set(stored) == {"moving", "one"} and stored["moving"]["frame_indices"][::3] == [0, T - 1]
    assert all(set(r) == set(SCHEMAS["clip_embeddings"].names) and r["dim"] == 384 and r["key"] == cid
               and r["weights_id"] == "random-init" for cid, r in stored.items())
    path = tmp_path / stored["moving"]["uri"]
    assert path == tmp_path / embeddings_uri("b000007")
    with np.load(path) as z:
        assert sorted(z.files) == ["moving", "one"] and z["moving"].shape == (4, 384) and z["one"].shape == (1, 384)
    again = rescore(path, stage.embedder, "a disc moving over a texture")
    assert again["moving"] == pytest.approx(rows[("moving", "clip_text_alignment")]["value"], abs=2e-3)  # float16 store
    assert not list(Path(tmp_path).rglob(".*.tmp.npz"))
