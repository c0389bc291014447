"""A token's place in its whole clip (model.clip_coords; data.sample_box).

An instruction names places in the whole clip ("on the right"), and a random crop moves them. The main test
trains the tiny model on two crops of one clip whose sources are identical pixel for pixel, one of which holds
the edit: without its place a model sees the same input twice and must give the same output; with it the
model learns both.
"""

from __future__ import annotations

import pytest
import torch
from _isa_model_helpers import awake, pair_set, through_the_clis, tiny

from isa_model import objective
from isa_model.config import ConfigError
from isa_model.data import EditPairs, sample_box, to_bucket
from isa_model.model import LIVEditor, coord_features, token_coords, whole_clip
from isa_model.sample import euler_sample

LEVEL = 2 / 255  # one level of 0..255 on the model's [-1, 1] scale


def test_sample_box_is_where_to_bucket_crops():
    """A column ramp scaled to cover the bucket: the crop's first column is the box's start, in pixels."""
    frames = torch.arange(40.0).view(1, 1, 1, 40).expand(3, 1, 16, 40)  # (T, C, H, W), value = column
    for left in (0.0, 0.3, 1.0):
        crop = to_bucket(frames, 16, 16, 0.5, left)
        box = sample_box(10, [4, 5, 6], (16, 40), 16, 16, 0.5, left)
        assert crop[0, 0, 0, 0].item() == pytest.approx(box[2, 0] * 40)
        assert box[2, 1] - box[2, 0] == pytest.approx(16 / 40)
        assert box[1].tolist() == [0.0, 1.0]  # the frame's whole height
        assert box[0].tolist() == pytest.approx([0.4, 0.7])  # frames 4..6 of 10


def test_the_loader_gives_each_sample_its_box(tmp_path):
    root = pair_set(tmp_path / "pairs")  # 40x48 clips of 6 frames; tiny's bucket is 32x32 of 4 frames
    cfg = tiny().model
    val = EditPairs(root, "train", cfg, seed=0, train=False)[(0, 0)]
    assert val["box"].shape == (3, 2)
    assert val["box"][2].sum().item() == pytest.approx(1.0, abs=1 / 38)  # centred: x0 + x1 = 1
    drawn = [EditPairs(root, "train", cfg, seed=s)[(0, 0)]["box"] for s in range(6)]
    assert len({tuple(b.flatten().tolist()) for b in drawn}) > 1  # random crops move the box
    for box in drawn:
        assert (box[:, 1] - box[:, 0]).tolist() == pytest.approx([4 / 6, 1.0, 32 / 38], abs=1e-6)


def test_token_coords_are_token_centres_in_raster_order():
    box = torch.tensor([[[0.0, 1.0], [0.0, 0.5], [0.5, 1.0]]])  # (1, 3, 2)
    coords = token_coords(box, (2, 2, 4))  # (1, 16, 3)
    assert coords.shape == (1, 16, 3)
    assert coords[0, 0].tolist() == [0.25, 0.125, 0.5625]
    assert coords[0, 1].tolist() == [0.25, 0.125, 0.6875]  # w moves fastest, as in patchify
    assert coords[0, -1].tolist() == [0.75, 0.375, 0.9375]
    assert coord_features(coords).shape == (1, 16, 36)


def test_a_model_without_coords_ignores_the_box_and_a_new_one_starts_as_if_it_had_none():
    torch.manual_seed(0)
    plain = awake(LIVEditor(tiny(attention="dense").model)).eval()
    with_coords = LIVEditor(tiny(attention="dense", clip_coords=True).model).eval()
    with_coords.load_state_dict(plain.state_dict(), strict=False)  # all but the coords layer, zero-initialised
    x, src = torch.randn(2, 2, 3, 4, 32, 32)
    t, text = torch.rand(2), plain.encode_text(plain.text.tokenize(["a", "b"]))
    box = torch.tensor([[0.0, 0.5], [0.1, 0.9], [0.3, 0.7]]).expand(2, 3, 2)
    with torch.no_grad():
        base = plain(x, t, src, text)
        assert torch.equal(plain(x, t, src, text, box), base)
        assert torch.equal(with_coords(x, t, src, text, box), base)
        assert with_coords.coords is not None
        torch.nn.init.normal_(with_coords.coords.weight, std=0.05)  # the place alone now moves the output
        moved = with_coords(x, t, src, text, box)
        assert not torch.allclose(moved, base)
        assert torch.equal(with_coords(x, t, src, text), with_coords(x, t, src, text, whole_clip(2, x.device)))


def test_the_context_cache_carries_the_box():
    torch.manual_seed(0)
    model = awake(LIVEditor(tiny(attention="dense", context_cache=True, clip_coords=True).model)).eval()
    x, src = torch.randn(2, 1, 3, 4, 32, 32)
    t, text = torch.full((1,), 0.7), model.encode_text(model.text.tokenize(["a"]))
    box = torch.tensor([[[0.0, 0.5], [0.1, 0.9], [0.3, 0.7]]])
    with torch.no_grad():
        cached = model.forward_cached(x, t, text, model.encode_context(src, text, box))
        assert torch.allclose(model(x, t, src, text, box), cached, atol=1e-5)
        assert not torch.allclose(model(x, t, src, text), cached, atol=1e-3)


def test_clip_coords_must_be_a_bool():
    with pytest.raises(ConfigError, match="clip_coords"):
        tiny(clip_coords="yes")


def test_train_validate_and_edit_with_clip_coords(tmp_path):
    """`--clip-coords on` through the CLIs: the boxes reach the model in training (its coords layer, zero at
    start, has learnt), and validation and editing read the checkpoint back."""
    cfg, weights = through_the_clis(tmp_path, ["--clip-coords", "on"], 3, "invert")
    assert cfg.model.clip_coords and weights["coords.weight"].abs().sum() > 0


def _two_crops(cfg) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(source, target, mask, box) for the left and right halves of a clip twice the bucket's width whose
    texture repeats at the bucket's width: both sources are the same pixels; a box is recoloured in the right
    half only."""
    g = torch.Generator().manual_seed(3)
    t, h, w = cfg.frames, cfg.height, cfg.width
    tile = 0.5 * torch.rand(3, t, h, w, generator=g) - 0.25  # (3, T, H, W)
    clip = torch.cat([tile, tile], dim=-1)  # (3, T, H, 2W)
    mask = torch.zeros(1, t, h, 2 * w)
    mask[..., 8:24, w + 8 : w + 24] = 1
    target = torch.where(mask.bool(), torch.tensor([0.8, -0.6, 0.2]).view(3, 1, 1, 1), clip)
    halves = [(clip[..., x : x + w], target[..., x : x + w], mask[..., x : x + w]) for x in (0, w)]
    source, tgt, m = (torch.stack(parts) for parts in zip(*halves))  # (2, C, T, H, W) each
    box = torch.tensor([[[0.0, 1.0], [0.0, 1.0], [0.0, 0.5]], [[0.0, 1.0], [0.0, 1.0], [0.5, 1.0]]])
    return source, tgt, m, box


@pytest.mark.parametrize("clip_coords", [False, True])
def test_only_a_model_that_knows_where_its_crop_lies_can_learn_an_edit_at_a_named_place(clip_coords):
    torch.manual_seed(0)
    torch.set_num_threads(1)  # deterministic and independent of the machine's cores
    cfg = tiny(attention="dense", clip_coords=clip_coords).model
    model = LIVEditor(cfg)
    src, tgt, mask, box = _two_crops(cfg)
    assert torch.equal(src[0], src[1])
    tokens = model.text.tokenize(["recolour the box on the right"]).expand(2, -1)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    change = objective.change_mask(src, tgt)  # (2, 1, T, H, W)
    ones = torch.ones(2)
    for _ in range(150):
        raw = model(src, ones, src, model.encode_text(tokens), box)  # delta: x_t is the source at t = 1
        loss, _ = objective.loss(objective.split_output(raw, cfg.channels, True), src - tgt, change, 0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    out = euler_sample(model, src, tokens, torch.zeros_like(src), steps=1, box=box)
    if not clip_coords:  # the same pixels, instruction and positions: the same output, whatever was learnt
        assert torch.equal(out[0], out[1])
        return
    outside = (1 - mask).bool().expand_as(out)
    assert (out - src)[outside].abs().max() <= LEVEL  # both crops keep the source outside the edit
    inside = mask.bool().expand_as(out)
    err_model, err_copy = (out - tgt)[inside].pow(2).mean(), (src - tgt)[inside].pow(2).mean()
    assert err_model < 0.1 * err_copy  # and the right half's edit happened
