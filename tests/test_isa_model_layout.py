"""Where an instruction puts its edit (model.layout; isa_model/layout.py): the places curation writes parse back
to their cells, a mirrored or reversed instruction gives the mirrored or reversed layout, each token's features
follow the path in time, a new model is the one without the layout, and the layout reaches the model in
training, validation and editing, dropped with the words it comes from."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _isa_model_helpers import awake, pair_set, through_the_clis, tiny
from safetensors.torch import load_file

from curation.editors.instructions import PLACE_EDGES, describe_object, place_index, place_name
from isa_model import checkpoint as ck
from isa_model.__main__ import main
from isa_model.augment import mirror_instruction, reverse_instruction
from isa_model.data import EditPairs, collate
from isa_model.layout import LAYOUT_FEATURES, instruction_layout, layout_features, place_centre
from isa_model.model import LIVEditor


def test_every_place_curation_names_parses_back_to_its_cells_centre():
    bounds = (0.0, *PLACE_EDGES, 1.0)
    for x in np.linspace(0.01, 0.99, 43):
        for y in np.linspace(0.01, 0.99, 43):
            cx, cy = place_centre(place_name(float(x), float(y)))
            col, row = place_index(float(x)), place_index(float(y))
            assert cx == pytest.approx((bounds[col] + bounds[col + 1]) / 2, abs=0.005)  # in whole percent
            assert cy == pytest.approx((bounds[row] + bounds[row + 1]) / 2, abs=0.005)


def test_an_instruction_names_a_path_a_place_or_nothing():
    mask = np.zeros((10, 90, 160), bool)
    for t in range(10):  # from the left edge, half way down, to the lower right
        mask[t, 40 + 2 * t : 50 + 2 * t, 5 + 12 * t : 20 + 12 * t] = True
    frames = np.full((10, 90, 160, 3), 40, np.uint8)
    frames[mask] = (200, 30, 30)
    moving = f"Put a {describe_object(frames, mask)} into the scene."
    assert "rectangular object, 9% wide and 11% tall, moving from (8%, 50%) to (75%, 70%)" in moving
    assert instruction_layout(moving).tolist() == pytest.approx([0.08, 0.5, 0.75, 0.7, 1.0, 0.09, 0.11])
    assert instruction_layout("Remove the small red object at (96%, 18%).").tolist() == pytest.approx(
        [0.96, 0.18, 0.96, 0.18, 1.0, 0.0, 0.0])  # no box named (pairs before stage 1.5)
    assert instruction_layout('Add the sign "OPEN" in large red letters on the left.').tolist() == pytest.approx(
        [1.5 / 7, 0.5, 1.5 / 7, 0.5, 1.0, 0.0, 0.0])  # a text edit's place in words
    assert instruction_layout('Erase the text "SALE" in the top right corner.').tolist() == pytest.approx(
        [5.5 / 7, 0.5 / 7, 5.5 / 7, 0.5 / 7, 1.0, 0.0, 0.0])
    assert not instruction_layout('Add the subtitle "hello" at the bottom.').any()
    assert not instruction_layout("Turn the video into a pencil sketch.").any()
    assert not instruction_layout('Add the caption "at (10%, 10%)" to the video.').any()  # quoted: content
    assert not instruction_layout('Add the caption "5% wide and 9% tall" to the video.').any()
    mirrored, reversed_ = instruction_layout(mirror_instruction(moving)), instruction_layout(reverse_instruction(moving))
    assert mirrored.tolist() == pytest.approx([0.92, 0.5, 0.25, 0.7, 1.0, 0.09, 0.11])  # x mirrored, the box kept
    assert reversed_.tolist() == pytest.approx([0.75, 0.7, 0.08, 0.5, 1.0, 0.09, 0.11])  # ends swapped


def test_layout_features_follow_the_path_in_time():
    layout = torch.tensor([[0.1, 0.5, 0.9, 0.5, 1.0, 0.0, 0.0], [0.0] * 7])  # a path; nothing named
    coords = torch.tensor([[[0.0, 0.5, 0.1], [0.5, 0.5, 0.5], [1.0, 0.5, 0.9], [0.0, 0.5, 0.9]]])  # (t, y, x)
    feats = layout_features(coords.expand(2, -1, -1), layout)  # (2, 4, 26)
    assert feats.shape == (2, 4, LAYOUT_FEATURES) == (2, 4, 26) and not feats[1].any()
    assert feats[0, :3, 1].tolist() == pytest.approx([1.0, 1.0, 1.0])  # on the path at each token's time
    assert feats[0, 3, 1] < 1e-6  # the path's end, at its start time: 0.8 of the clip away
    assert feats[0, :, 0].tolist() == [1.0] * 4
    assert not feats[0, :, -4:].any()  # no box named: its features are zeros


def test_layout_features_say_how_far_inside_the_named_box_a_token_is():
    layout = torch.tensor([[0.5, 0.5, 0.5, 0.5, 1.0, 0.2, 0.4]])  # a box 20% wide and 40% tall at the centre
    coords = torch.tensor([[[0.0, 0.5, 0.5], [0.0, 0.5, 0.55], [0.0, 0.65, 0.5], [0.0, 0.5, 0.6], [0.0, 0.5, 0.9]]])
    box = layout_features(coords, layout)[0, :, -4:]  # (5, 4): flag, u_x / 4, u_y / 4, inside
    assert box[:, 0].tolist() == [1.0] * 5
    assert box[:, 3].tolist() == pytest.approx([1.0, 0.5, 0.25, 0.0, -1.0], abs=1e-5)  # centre, inside, edge, outside
    assert box[1, 1:3].tolist() == pytest.approx([0.125, 0.0], abs=1e-5)  # half way to the right edge: u_x = 0.5
    assert box[4, 1] == pytest.approx(1.0)  # 4 half-widths away: clamped


def test_a_new_layout_model_is_the_one_without_and_an_unnamed_place_adds_nothing():
    torch.manual_seed(0)
    plain = awake(LIVEditor(tiny(attention="dense").model)).eval()
    with_layout = LIVEditor(tiny(attention="dense", layout=True).model).eval()
    with_layout.load_state_dict(plain.state_dict(), strict=False)  # all but the layout layers
    x, src = torch.randn(2, 2, 3, 4, 32, 32)
    t, text = torch.rand(2), plain.encode_text(plain.text.tokenize(["a", "b"]))
    named = torch.tensor([[0.1, 0.5, 0.9, 0.5, 1.0, 0.1, 0.2], [0.3, 0.3, 0.3, 0.3, 1.0, 0.0, 0.0]])
    with torch.no_grad():
        base = plain(x, t, src, text)
        assert torch.equal(with_layout(x, t, src, text, layout=named), base)
        assert with_layout.layout is not None
        torch.nn.init.normal_(with_layout.layout[-1].weight, std=0.05)  # the layout alone now moves the output
        assert not torch.allclose(with_layout(x, t, src, text, layout=named), base)
        unnamed = with_layout(x, t, src, text, layout=torch.zeros(2, 7))
        assert torch.equal(unnamed, with_layout(x, t, src, text)) and torch.allclose(unnamed, base, atol=1e-6)


def test_the_loader_gives_each_sample_its_instructions_layout(tmp_path):
    root = pair_set(tmp_path / "pairs")
    pairs = EditPairs(root, "train", tiny().model, seed=0)
    items = [pairs[(0, i)] for i in range(len(pairs))]
    for item in items:
        assert torch.equal(item["layout"], torch.from_numpy(instruction_layout(item["instruction"])))
    assert any(item["layout"][4] == 1 for item in items)  # "in the top left corner" names a place
    assert collate(items)["layout"].shape == (len(items), 7)


def test_train_validate_and_edit_with_the_layout(tmp_path):
    """`--layout on` through the CLIs: the layout reaches the model in training (its last layer, zero at start,
    has learnt), and validation and editing read the checkpoint back."""
    cfg, weights = through_the_clis(tmp_path, ["--layout", "on"], 8, "invert the colours in the top left corner")
    assert cfg.model.layout and weights["layout.2.weight"].abs().sum() > 0


def test_the_layout_is_dropped_with_the_words(tmp_path):
    """With every instruction dropped (classifier-free guidance's empty instruction), no sample names a place:
    the layout layers get no gradient and stay as they started."""
    root = pair_set(tmp_path / "pairs")
    config = tmp_path / "dropped.json"
    config.write_text(json.dumps({"name": "dropped", "base": "tiny", "model": {"attention": "dense", "layout": True},
                                  "train": {"text_dropout": 1.0}}))
    assert main(["train", "--config", str(config), "--data", str(root), "--steps", "8", "--out", str(tmp_path / "run")]) == 0
    ckpt = ck.latest(tmp_path / "run" / "checkpoints")
    assert ckpt is not None
    weights = load_file(ckpt / "model.safetensors")
    assert not weights["layout.2.weight"].any() and weights["out.weight"].abs().sum() > 0


def test_layout_must_be_a_bool():
    from isa_model.config import ConfigError

    with pytest.raises(ConfigError, match="layout"):
        tiny(layout="yes")
