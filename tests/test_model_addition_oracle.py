"""benchmarks/model_addition_oracle.py: the two first-frame oracles of an addition, and its one-line refusal."""

from __future__ import annotations

import torch
from _isa_model_helpers import benchmark_tool, pair_set

oracle = benchmark_tool("model_addition_oracle")


def test_oracles_take_the_first_frames_object_and_nothing_else():
    source, target = torch.zeros(3, 4, 6, 6), torch.rand(3, 4, 6, 6)  # (C, T, H, W)
    mask = torch.zeros(4, 6, 6)
    mask[0, 1:3, 1:3] = 1  # the object's first place
    mask[1:, 3:5, 3:5] = 1  # where it moves later: no oracle knows this
    clips = oracle.oracles(source, target, mask)
    inside = mask[0].bool()
    first, still = clips["first frame"], clips["held still"]
    assert torch.equal(first[:, 0][:, inside], target[:, 0][:, inside]) and torch.equal(first[:, 1:], source[:, 1:])
    assert torch.equal(first[:, 0][:, ~inside], source[:, 0][:, ~inside])
    for t in range(4):  # frame 0's object in every frame, at its first place; the rest is the source
        assert torch.equal(still[:, t][:, inside], target[:, 0][:, inside])
        assert torch.equal(still[:, t][:, ~inside], source[:, t][:, ~inside])


def test_a_set_without_addition_pairs_is_a_one_line_error(tmp_path, capsys):
    root = pair_set(tmp_path / "pairs")  # synthetic edits: none of them an addition
    assert oracle.main([str(root), "--config", "tiny"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "no readable addition pairs" in err and "\n" not in err
