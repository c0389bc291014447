"""LIVEditor's objectives (isa_model/objective.py): the bridge from the source and the blend mask.

The main test overfits the tiny model on one local-edit pair with the bridge and the blend mask, and checks
that the sample equals the source outside the edit to within one level of 255, and is nearer the target
than the source inside it.
"""

from __future__ import annotations

import pytest
import torch
from _isa_model_helpers import tiny

from isa_model import objective
from isa_model.config import ConfigError, config_from_dict
from isa_model.model import LIVEditor
from isa_model.sample import euler_sample

LEVEL = 2 / 255  # one level of 0..255 on the model's [-1, 1] scale


def _pair(cfg) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(source, target, mask): a smooth textured clip, and the same with a box recoloured (B=1)."""
    g = torch.Generator().manual_seed(3)
    t, h, w = cfg.frames, cfg.height, cfg.width
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    phase = torch.rand(3, 1, 1, 1, generator=g) * 6
    frames = torch.arange(t).view(1, t, 1, 1) * 0.3
    source = 0.6 * torch.sin(3 * xx + 2 * yy + phase + frames)  # (3, T, H, W)
    mask = torch.zeros(1, t, h, w)
    mask[:, :, 8:24, 8:24] = 1  # a 16x16 box on every frame
    recoloured = torch.tensor([0.8, -0.6, 0.2]).view(3, 1, 1, 1).expand_as(source)
    target = torch.where(mask.bool(), recoloured, source)
    return source[None], target[None], mask[None]  # (1, 3, T, H, W), ..., (1, 1, T, H, W)


def test_delta_trains_at_t_one_and_samples_in_one_step():
    g = torch.Generator().manual_seed(0)
    assert torch.equal(objective.timesteps("delta", 5, g), torch.ones(5))
    assert objective.timesteps("source", 1000, g).std() > 0.1
    assert objective.sampling_steps("delta", 16) == 1 and objective.sampling_steps("source", 16) == 16


def test_paths_start_where_the_objective_says_and_end_at_the_target():
    x0, src, noise = torch.randn(2, 3, 2, 4, 4), torch.randn(2, 3, 2, 4, 4), torch.randn(2, 3, 2, 4, 4)
    for name, x1 in (("noise", noise), ("source", src)):
        start = objective.path_start(name, src, noise)
        assert start is x1
        x_t, v = objective.path_point(x0, start, torch.tensor([1.0, 0.0]))
        assert torch.equal(x_t[0], x1[0]) and torch.equal(x_t[1], x0[1])
        assert torch.allclose(x_t[0] - v[0], x0[0], atol=1e-6)  # one Euler step of size 1 from t = 1 lands on x0
    with pytest.raises(ValueError, match="objective"):
        objective.path_start("target", src, noise)


def test_change_mask_marks_the_edited_pixels():
    src = torch.zeros(1, 3, 1, 8, 8)
    tgt = src.clone()
    tgt[0, 1, 0, 4, 4] = 0.5  # one pixel, one channel
    tgt[0, 0, 0, 0, 0] = 0.05  # under the threshold: codec noise
    m = objective.change_mask(src, tgt)
    assert m.shape == (1, 1, 1, 8, 8)
    assert m[0, 0, 0, 4, 4] == 1 and m.sum() == 1


def test_keep_source_cuts_the_mask_at_its_threshold():
    x, source = torch.ones(1, 3, 1, 1, 3), torch.zeros(1, 3, 1, 1, 3)
    logits = torch.tensor([-0.1, 0.5, 2.0]).view(1, 1, 1, 1, 3)  # m = 0.48, 0.62, 0.88
    kept = [objective.keep_source(x, source, logits, p)[0, 0, 0, 0].tolist() for p in (0.5, 0.7, 0.9)]
    assert kept == [[0, 1, 1], [0, 0, 1], [0, 0, 0]]
    assert torch.equal(objective.keep_source(x, source, None, 0.9), x)  # no mask: nothing is kept


def test_train_settings_of_the_mask_are_checked():
    with pytest.raises(ConfigError, match="mask_threshold"):
        config_from_dict({"train": {"mask_threshold": 1.0}})
    with pytest.raises(ConfigError, match="mask_weight"):
        config_from_dict({"train": {"mask_weight": -1}})
    with pytest.raises(ConfigError, match="edit_weight"):
        config_from_dict({"train": {"edit_weight": -0.5}})


def _pair_with_edit(area: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(changed, error): one 10x10 frame whose first `area` pixels are edited and wrong by 1, the rest right."""
    changed = torch.zeros(1, 1, 1, 10, 10)
    changed.view(-1)[:area] = 1
    return changed, changed.expand(1, 3, 1, 10, 10)


def test_edit_weight_counts_an_edit_whatever_its_area():
    losses = {}
    for area in (5, 50):
        changed, err = _pair_with_edit(area)
        v = torch.zeros_like(err)
        plain, _ = objective.loss(objective.Prediction(err), v, changed, 0.1)
        weighted, _ = objective.loss(objective.Prediction(err), v, changed, 0.1, edit_weight=2.0)
        assert plain.item() == pytest.approx(area / 100)  # a pixel mean weighs the pair by its area
        losses[area] = weighted.item() - plain.item()
    assert losses[5] == pytest.approx(2.0) and losses[50] == pytest.approx(2.0)  # 2 x the edited pixels' mean


def test_edit_weight_is_one_number_per_pair_bounded_and_one_without_an_edit():
    changed = torch.zeros(3, 1, 1, 10, 10)
    changed[0].view(-1)[0] = 1  # 1 % of the frame: at the floor
    changed[1].view(-1)[:50] = 1  # half the frame; pair 2 edits nothing in view
    w = objective.pair_weights(changed, 1.0)
    assert w.shape == (3, 1, 1, 1, 1)
    assert w.view(-1).tolist() == pytest.approx([1 + 1 / objective.EDIT_AREA_FLOOR, 3.0, 1.0])


def test_edit_weight_leaves_each_pixels_optimum_where_it_was():
    """The mask's best probability at a pixel edited in one of two equal pairs is 1/2 with or without the
    weight: the gradient of the weighted BCE at m = 1/2 is zero. (Weighting the edited pixels alone moved it
    to 34/35 for a 3 % edit, and the mask fired outside the edits.)"""
    changed = torch.zeros(2, 1, 1, 10, 10)
    changed[:, 0, 0, 0, 1:4] = 1  # both pairs edit the same 3 pixels
    changed[0, 0, 0, 0, 0] = 1  # pixel 0 only in the first pair
    changed[1, 0, 0, 0, 5] = 1  # and pixel 5 only in the second: both edit 4 pixels
    logit = torch.zeros((), requires_grad=True)  # pixel 0's, shared by both pairs
    logits = torch.zeros(2, 1, 1, 10, 10)
    logits[:, 0, 0, 0, 0] = logit
    pred = objective.Prediction(torch.zeros(2, 3, 1, 10, 10), logits)
    loss, _ = objective.loss(pred, torch.zeros(2, 3, 1, 10, 10), changed, 1.0, edit_weight=3.0)
    (grad,) = torch.autograd.grad(loss, logit)
    assert abs(grad.item()) < 1e-7


@pytest.mark.parametrize("name", ["source", "delta"])
def test_an_untrained_model_that_starts_at_the_source_copies_it_exactly(name):
    model = LIVEditor(tiny(objective=name, blend_mask=True).model).eval()
    src, _, _ = _pair(model.cfg)
    noise = torch.randn(src.shape, generator=torch.Generator().manual_seed(0))
    out = euler_sample(model, src, model.text.tokenize(["make the box red"]), noise, steps=4)
    assert torch.equal(out, src.clamp(-1, 1))


def test_blend_mask_needs_the_source_objective():
    with pytest.raises(ConfigError, match="blend_mask"):
        tiny(objective="noise", blend_mask=True)
    with pytest.raises(ConfigError, match="objective"):
        tiny(objective="target")


def test_noised_source_sampling_is_for_the_noise_objective_only():
    model = LIVEditor(tiny(objective="source").model).eval()
    src, _, _ = _pair(model.cfg)
    with pytest.raises(ValueError, match="start_t"):
        euler_sample(model, src, model.text.tokenize(["x"]), torch.zeros_like(src), steps=2, start_t=0.5)


@pytest.mark.parametrize(("name", "steps"), [("delta", 120), ("source", 250)])
def test_a_tiny_model_overfit_on_one_pair_keeps_the_source_outside_the_edit(name, steps):
    """The objectives that start at the source, with the blend mask: one pair, four timesteps a step."""
    torch.manual_seed(0)
    torch.set_num_threads(1)  # deterministic and independent of the machine's cores
    cfg = tiny(objective=name, blend_mask=True, attention="dense").model
    model = LIVEditor(cfg)
    src, tgt, mask = _pair(cfg)
    tokens = model.text.tokenize(["make the box red"])
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(1)
    change = objective.change_mask(src, tgt)  # (1, 1, T, H, W)
    for _ in range(steps):
        t = objective.timesteps(name, 4, g)  # four timesteps of the one pair per step
        s4, x0 = src.expand(4, -1, -1, -1, -1), tgt.expand(4, -1, -1, -1, -1)
        x_t, v = objective.path_point(x0, objective.path_start(name, s4, s4), t)
        raw = model(x_t, t, s4, model.encode_text(tokens.expand(4, -1)))
        loss, _ = objective.loss(objective.split_output(raw, cfg.channels, True), v, change.expand(4, -1, -1, -1, -1), 0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    out = euler_sample(model, src, tokens, torch.zeros_like(src), steps=8)
    outside = (1 - mask).bool().expand_as(out)
    assert (out - src)[outside].abs().max() <= LEVEL  # the kept region is the source, to within one level
    inside = mask.bool().expand_as(out)
    err_model, err_copy = (out - tgt)[inside].pow(2).mean(), (src - tgt)[inside].pow(2).mean()
    assert err_model < 0.1 * err_copy  # and the edit happened: 10 dB nearer the target than the copy
