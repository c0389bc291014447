"""LIVEditor's mirrored and reversed training samples: the clip, its box in the whole clip and its instruction
change together, validation reads what it read, and text edits are never flipped."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from _isa_model_helpers import pair_set, tiny

from curation.editors.instructions import describe_object, place_name
from isa_model.__main__ import _overrides, _parser
from isa_model.augment import AUGMENT_SKIPS, augment_choice, mirror_instruction, reverse_instruction
from isa_model.config import ConfigError, load_config
from isa_model.data import EditPairs

PLACES = sorted({place_name(x, y) for x, y in itertools.product(np.linspace(0, 1, 43), repeat=2)})


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return pair_set(tmp_path_factory.mktemp("pairs"))


def test_every_path_curation_names_is_walked_backwards():
    assert len(PLACES) == 43 * 43  # whole percent: every point of the 43 x 43 grid has its own place
    for start, end in [*zip(PLACES, PLACES[::-1]), *itertools.product(PLACES[::97], repeat=2)]:
        text = f"Put a small red object moving from {start} to {end} into the scene."
        assert reverse_instruction(text) == f"Put a small red object moving from {end} to {start} into the scene."


def test_every_place_curation_names_mirrors_into_the_mirrored_cell():
    for x, y in itertools.product(np.linspace(0.01, 0.99, 30), repeat=2):  # none on an edge (place_name)
        text = f"Put a small red object at {place_name(x, y)} into the scene."
        assert mirror_instruction(text) == f"Put a small red object at {place_name(1 - x, y)} into the scene."


def test_mirror_swaps_sides_as_words_and_keeps_quoted_text():
    assert mirror_instruction("Remove the large blue object at (4%, 46%).") == "Remove the large blue object at (96%, 46%)."
    text = "Put a green object moving from (18%, 25%) to (96%, 75%) into the video."
    assert mirror_instruction(text) == "Put a green object moving from (82%, 25%) to (4%, 75%) into the video."
    assert mirror_instruction(mirror_instruction(text)) == text
    assert mirror_instruction('Write "left turn (4%, 5%)" on the right.') == 'Write "left turn (4%, 5%)" on the left.'
    assert mirror_instruction("Brighten the bright sky.") == "Brighten the bright sky."
    assert reverse_instruction("Remove the object at (4%, 46%).") == "Remove the object at (4%, 46%)."


def test_a_described_object_mirrors_into_the_mirrored_description():
    """describe_object of a mirrored mask is mirror_instruction of the description (places are symmetric)."""
    frames = np.zeros((6, 40, 60, 3), np.uint8)
    frames[..., 0] = 200
    mask = np.zeros((6, 40, 60), bool)
    for t in range(6):
        mask[t, 2 + 3 * t : 8 + 3 * t, 3 + 2 * t : 11 + 2 * t] = True  # moves right and down
    described = describe_object(frames, mask)
    assert "moving from (" in described
    assert describe_object(frames[:, :, ::-1], mask[:, :, ::-1]) == mirror_instruction(described)
    assert describe_object(frames[::-1], mask[::-1]) == reverse_instruction(described)


def test_text_edits_and_zero_probabilities_are_never_flipped():
    for edit_type in AUGMENT_SKIPS:
        assert all(augment_choice(0, e, r, edit_type, 1.0, 1.0) == (False, False) for e in range(5) for r in range(5))
    assert augment_choice(0, 0, 0, "addition", 1.0, 1.0) == (True, True)
    assert augment_choice(0, 0, 0, "addition", 0.0, 0.0) == (False, False)
    halves = [augment_choice(3, e, 2, "removal", 0.5, 0.5) for e in range(200)]
    assert 60 < sum(m for m, _ in halves) < 140 and 60 < sum(r for _, r in halves) < 140


def test_a_mirrored_sample_is_the_plain_sample_flipped(root):
    cfg = tiny().model
    plain = EditPairs(root, "train", cfg, seed=5)
    mirrored = EditPairs(root, "train", cfg, seed=5, mirror=1.0)
    reversed_ = EditPairs(root, "train", cfg, seed=5, reverse=1.0)
    local = [i for i, r in enumerate(plain.rows) if r["mask_uri"]]
    assert local
    for key in [(0, i) for i in local] + [(1, 0), (2, 1)]:
        a, m, r = plain[key], mirrored[key], reversed_[key]
        for name in ("source", "target"):
            assert torch.equal(m[name], a[name].flip(-1)) and torch.equal(r[name], a[name].flip(1))
        if a["mask"] is not None:
            assert torch.equal(m["mask"], a["mask"].flip(-1)) and torch.equal(r["mask"], a["mask"].flip(0))
            assert not torch.equal(m["mask"], a["mask"])  # the box edit is off-centre: the flip moved it
        assert torch.allclose(m["box"][2], 1 - a["box"][2].flip(0)) and torch.equal(m["box"][:2], a["box"][:2])
        assert torch.allclose(r["box"][0], 1 - a["box"][0].flip(0)) and torch.equal(r["box"][1:], a["box"][1:])
        assert m["instruction"] == mirror_instruction(a["instruction"])


def test_validation_reads_the_pair_as_it_is(root):
    cfg = tiny().model
    plain = EditPairs(root, "val", cfg, seed=5, train=False)
    flipped = EditPairs(root, "val", cfg, seed=5, train=False, mirror=1.0, reverse=1.0)
    for i in range(len(plain)):
        assert torch.equal(plain[(0, i)]["source"], flipped[(0, i)]["source"])


def test_probabilities_are_validated_and_reach_the_config_from_the_command_line():
    args = _parser().parse_args(["train", "--config", "tiny", "--out", "run", "--mirror", "0.5", "--reverse", "0.25"])
    data = load_config("tiny", _overrides(args)).data
    assert (data.mirror, data.reverse) == (0.5, 0.25)
    with pytest.raises(ConfigError, match=r"data\.mirror"):
        load_config("tiny", {"data": {"mirror": 1.5}})
