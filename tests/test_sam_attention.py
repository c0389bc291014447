"""The fused relative-position attention of SAM's image encoder equals segment-anything's own, on the CPU."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from curation.models.sam import build_sam
from curation.models.sam_attention import fuse_encoder_attention, key_position_codes, rel_pos_attention, rel_pos_terms


def test_rel_pos_attention_equals_explicit_logits():
    torch.manual_seed(0)
    h, w, c, b = 3, 5, 8, 2
    q, k, v = (torch.randn(b, h * w, c) for _ in range(3))
    rel_pos_h, rel_pos_w = torch.randn(2 * h - 1, c), torch.randn(2 * w - 1, c)
    rel_h, rel_w = rel_pos_terms(q, rel_pos_h, rel_pos_w, (h, w))
    logits = 0.3 * q @ k.transpose(1, 2)  # (B, N, N), then the decomposed terms by key row and column
    logits = logits.view(b, h * w, h, w) + rel_h[..., :, None] + rel_w[..., None, :]
    expected = logits.view(b, h * w, h * w).softmax(-1) @ v
    got = rel_pos_attention(q, k, v, rel_h, rel_w, (h, w), 0.3)
    assert got.shape == (b, h * w, c)
    assert torch.allclose(got, expected, atol=1e-5)
    codes = key_position_codes((h, w), torch.float32, torch.device("cpu"))
    assert codes.shape == (h * w, h + w) and torch.equal(codes.sum(1), torch.full((h * w,), 2.0))


def test_fused_encoder_matches_segment_anything():
    torch.manual_seed(0)
    image_size = 256  # a 16x16 grid: the windowed blocks pad it to 28x28, the global ones see all 256 tokens
    model = build_sam("vit_b", image_size)
    for name, p in model.image_encoder.named_parameters():
        if "rel_pos" in name:  # zero at init: make the position terms count
            p.data.normal_(0, 0.5)
    reference = model.image_encoder.eval()
    fused = copy.deepcopy(reference)
    assert fuse_encoder_attention(fused) == 12
    assert fused.state_dict().keys() == reference.state_dict().keys()
    x = torch.randn(1, 3, image_size, image_size)
    with torch.inference_mode():
        expected, got = reference(x), fused(x)
    assert got.shape == expected.shape == (1, 256, image_size // 16, image_size // 16)
    assert torch.allclose(got, expected, atol=2e-4, rtol=1e-4), (got - expected).abs().max()


def test_sam_masker_gives_the_same_masks_with_either_attention():
    from _moving_disc import H, W, texture

    from curation.models.sam import SamConfig, SamMasker
    from curation.models.weights import WeightsConfig

    frame = texture(4, H, W, 1)
    boxes = np.array([[0, 0, 40, 40], [60, 20, 128, 96]], np.float32)
    masks = {}
    for attention in ("library", "fused"):
        weights = WeightsConfig(weights="none-here.pt", allow_random_init=True)
        sam = SamMasker(SamConfig(image_size=64, weights=weights, attention=attention))
        sam.setup()
        masks[attention] = sam.masks(frame, boxes)
    assert masks["fused"].shape == (2, H, W) and masks["fused"].any()
    assert (masks["fused"] == masks["library"]).mean() > 0.999  # equal but for an edge pixel fp32 sums may flip


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fused_encoder_on_cuda_in_bf16_stays_near_the_library_in_fp32():
    torch.manual_seed(0)
    model = build_sam("vit_b", 1024)
    for name, p in model.image_encoder.named_parameters():
        if "rel_pos" in name:
            p.data.normal_(0, 0.02)
    reference = model.image_encoder.cuda().eval()
    fused = copy.deepcopy(reference)
    fuse_encoder_attention(fused)
    x = torch.randn(2, 3, 1024, 1024, device="cuda")
    with torch.inference_mode():
        expected = reference(x)
        with torch.autocast("cuda", torch.bfloat16):
            got = fused(x).float()
    assert (got - expected).abs().max() / expected.abs().max() < 0.03  # bf16 rounding: the library's own is ~0.01
