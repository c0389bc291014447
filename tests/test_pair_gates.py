"""Pair quality gates: each value on inputs whose answer is known, the config, the skipped model gates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from filters import FilterError
from filters.pair_gates import (
    GateValue,
    PairGateConfig,
    clip_direction_gate,
    direction_score,
    edit_regions,
    edit_strength,
    evaluate_pair,
    gates_passed,
    mask_area_fraction,
    mask_temporal_iou,
    psnr,
    ssim_map,
    temporal_flicker,
    vlm_instruction_gate,
)

T, H, W = 4, 32, 40


def _frames(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(30, 220, (T, H, W, 3), np.uint8)


def _mask(shift: int = 2) -> np.ndarray:
    m = np.zeros((T, H, W), bool)
    for t in range(T):
        m[t, 8:24, 4 + shift * t : 20 + shift * t] = True
    return m


def test_mask_area_and_temporal_iou():
    m = _mask(shift=0)
    assert mask_area_fraction(m) == pytest.approx(256 / (H * W))
    assert mask_temporal_iou(m) == 1.0
    assert mask_temporal_iou(_mask(shift=4)) == pytest.approx(12 / 20)  # 16x12 overlap of two 16x16 squares
    jump = m.copy()
    jump[1:] = np.roll(jump[1:], 20, axis=2)  # the track jumps to another place
    assert mask_temporal_iou(jump) == pytest.approx(2 / 3)  # one of three steps has IoU 0
    assert mask_temporal_iou(np.zeros((T, H, W), bool)) == 1.0


def test_psnr_and_ssim_known_values():
    a = _frames()
    b = a.copy()
    assert psnr(a, b) == math.inf
    b[..., 0] = np.clip(a[..., 0].astype(int) + 10, 0, 255)  # +10 on one channel of three
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / (100 / 3)), abs=1e-6)
    assert math.isnan(psnr(a, b, np.zeros((T, H, W), bool)))
    assert np.allclose(ssim_map(a, a), 1.0)
    assert ssim_map(a, _frames(1)).mean() < 0.2  # independent noise


def test_edit_strength_separates_inside_from_outside():
    src, m = _frames(), _mask()
    tgt = src.copy()
    tgt[m] = 255 - tgt[m]
    s = edit_strength(src, tgt, m, "inside", margin_px=2)
    assert s["psnr_kept"] == math.inf and s["ssim_kept"] > 0.98  # SSIM's 1.5-sigma window reaches past the margin
    assert s["psnr_edited"] < 15 and s["ssim_edited"] < 0.5
    flipped = edit_strength(src, tgt, ~m, "outside", margin_px=2)  # the same change as a background edit
    assert flipped["psnr_kept"] == math.inf and flipped["psnr_edited"] < 15
    edited, kept = edit_regions(m, "inside", m.shape, 2)
    assert not (edited & kept).any() and (~edited & ~kept).any()  # a margin between them
    with pytest.raises(FilterError, match="differ in shape"):
        edit_strength(src, tgt[:, :-2], m, "inside")
    with pytest.raises(FilterError, match="region"):
        edit_strength(src, tgt, m, "sideways")


def test_temporal_flicker():
    src = np.repeat(_frames()[:1], T, axis=0)  # a still clip
    assert temporal_flicker(src, src) == 0.0
    flicker = src.copy()
    flicker[1::2] = np.clip(flicker[1::2].astype(int) + 20, 0, 255)  # every other frame brighter
    assert temporal_flicker(src, flicker) > 15
    assert temporal_flicker(flicker, src) == 0.0  # a steadier target adds no flicker
    assert temporal_flicker(src[:1], src[:1]) == 0.0


def test_config_validation():
    assert PairGateConfig.from_dict({"min_psnr_kept": 38}).min_psnr_kept == 38
    with pytest.raises(FilterError, match="unknown pair gate"):
        PairGateConfig.from_dict({"min_psnr_kep": 38})
    with pytest.raises(FilterError, match="greater than"):
        PairGateConfig(min_mask_area=0.5, max_mask_area=0.1)
    with pytest.raises(FilterError, match="fraction"):
        PairGateConfig(min_mask_iou=1.5)
    with pytest.raises(FilterError, match="finite"):
        PairGateConfig(max_flicker=float("nan"))


def test_evaluate_pair_passes_a_good_edit_and_fails_a_bad_one():
    src, m = _frames(), _mask()
    good = src.copy()
    good[m] = 255 - good[m]
    values = evaluate_pair(src, good, m, "inside", PairGateConfig(), track=(src, m))
    assert gates_passed(values) == ["area_cv", "boundary_edge", "connected", "edit_strength", "flicker", "mask_area",
                                    "mask_iou", "psnr_kept"]
    drawn = evaluate_pair(src, good, m, "inside", PairGateConfig())  # a mask the editor drew: no object gates
    assert gates_passed(drawn) == ["edit_strength", "flicker", "psnr_kept"]
    assert values["ssim_edited"].passed is None and values["ssim_edited"].value < 0.5
    leaky = good.copy()
    leaky[~m] = 255 - leaky[~m]  # changed everywhere: outside not kept
    assert not evaluate_pair(src, leaky, m, "inside", PairGateConfig())["psnr_kept"].passed
    nothing = evaluate_pair(src, src.copy(), m, "inside", PairGateConfig())
    assert not nothing["edit_strength"].passed
    grade = src.copy()
    grade[..., 2] = (grade[..., 2] * 0.5).astype(np.uint8)  # a colour grade: blue halved, grey nearly kept
    graded = evaluate_pair(src, grade, None, "global", PairGateConfig())
    assert graded["edit_strength"].passed and graded["ssim_edited"].value > 0.9
    style = evaluate_pair(src, good, None, "global", PairGateConfig())
    assert "psnr_kept" not in style and "mask_area" not in style


class _Encoder:
    """Outside boundary: what the model stage's CLIP wrapper provides (fixed embeddings here)."""

    def __init__(self, weights_id: str) -> None:
        self.weights_id = weights_id

    def encode_images(self, frames):
        rgb = frames.mean(axis=(1, 2))  # (N, 3): mean colour as a 4-d embedding
        return np.concatenate([rgb, np.zeros((len(rgb), 1))], axis=1)

    def encode_texts(self, texts):
        return np.array([[1.0, 0, 0, 0] if "red" in t else [0, 1.0, 0, 0] for t in texts])


def test_clip_direction():
    assert direction_score(np.array([1.0, 0]), np.array([0, 1.0]), np.array([1.0, 0]), np.array([0, 1.0])) == pytest.approx(1)
    assert direction_score(np.array([1.0, 0]), np.array([0, 1.0]), np.array([0, 1.0]), np.array([1.0, 0])) == pytest.approx(-1)
    src = np.zeros((2, 2, 2, 3), np.uint8)
    src[..., 0] = 200
    tgt = np.zeros_like(src)
    tgt[..., 1] = 200
    cfg = PairGateConfig()
    for weights in ("random-init", "none"):
        g = clip_direction_gate(_Encoder(weights), src, tgt, "a red video", "a green video", cfg)
        assert g.passed is None and "skipped" in g.reason and g.value is None
    assert clip_direction_gate(None, src, tgt, "a", "b", cfg).reason == "skipped: no CLIP model configured"
    g = clip_direction_gate(_Encoder("laion2b_s34b_b79k"), src, tgt, "a red video", "a green video", cfg)
    assert g.value == pytest.approx(1.0) and g.passed


def test_vlm_instruction_gate():
    src, cfg = _frames(), PairGateConfig()
    assert vlm_instruction_gate(None, src, src, "x", cfg) == GateValue(None, None, "skipped: no VLM configured")
    assert vlm_instruction_gate(lambda s, t, i: 0.9, src, src, "x", cfg) == GateValue(0.9, True)
    assert vlm_instruction_gate(lambda s, t, i: 0.1, src, src, "x", cfg).passed is False

    def down(s, t, i):
        raise ConnectionError("refused")

    assert "ConnectionError" in vlm_instruction_gate(down, src, src, "x", cfg).reason
    assert vlm_instruction_gate(lambda s, t, i: 7.0, src, src, "x", cfg).passed is None
    assert vlm_instruction_gate(lambda s, t, i: "yes", src, src, "x", cfg).passed is None
