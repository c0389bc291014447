"""benchmarks/model_oracles.py: an addition's first-frame oracles; the draws an add_text plan could have been
and the guesses that average them; one text pair scored end to end (its plan drawn again is its target); and
the one-line refusal of a set without the type."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from _isa_model_helpers import benchmark_tool, pair_set

from curation.corpus.photos import load_photo
from curation.editors import EditInput, get_editor
from curation.editors.output import write_clip
from curation.editors.text import FILLS, FONTS, SIZES, TEXTS, TextConfig, TextPlan
from isa_model.config import load_config

oracles = benchmark_tool("model_oracles")
PLAN = TextPlan(kind="sign", text="OPEN", font="sans", size="large", fill="red", place="on the left",
                motion="static", font_px=17)


def test_addition_oracles_take_the_first_frames_object_and_nothing_else():
    source, target = torch.zeros(3, 4, 6, 6), torch.rand(3, 4, 6, 6)  # (C, T, H, W)
    mask = torch.zeros(4, 6, 6)
    mask[0, 1:3, 1:3] = 1  # the object's first place
    mask[1:, 3:5, 3:5] = 1  # where it moves later: no oracle knows this
    clips = oracles.addition_oracles(source, target, mask)
    inside = mask[0].bool()
    first, still = clips["first frame"], clips["held still"]
    assert torch.equal(first[:, 0][:, inside], target[:, 0][:, inside]) and torch.equal(first[:, 1:], source[:, 1:])
    assert torch.equal(first[:, 0][:, ~inside], source[:, 0][:, ~inside])
    for t in range(4):  # frame 0's object in every frame, at its first place; the rest is the source
        assert torch.equal(still[:, t][:, inside], target[:, 0][:, inside])
        assert torch.equal(still[:, t][:, ~inside], source[:, t][:, ~inside])


def test_text_draws_are_every_text_font_size_and_colour_of_the_kind():
    draws = oracles.text_draws(PLAN, height=144)
    assert len(draws) == len(TEXTS["sign"]) * len(FONTS) * len(SIZES) * len(FILLS["sign"])
    assert PLAN in draws  # the plan itself is one of them (large: round(0.12 * 144) = 17 px)
    assert {(d.kind, d.place, d.motion) for d in draws} == {("sign", "on the left", "static")}
    custom = oracles.text_draws(dataclasses.replace(PLAN, text="Not a stock sign"), height=144)
    assert "Not a stock sign" in {d.text for d in custom}  # a configured text is drawn too


def test_each_text_guess_averages_the_draws_it_cannot_tell_apart():
    draws = oracles.text_draws(PLAN, height=144)
    clips = {d: torch.full((3, 1, 1, 1), float(i)) for i, d in enumerate(draws)}  # (C, T, H, W): its index
    guesses = oracles.text_guesses(PLAN, clips)
    assert set(guesses) == set(oracles.KNOWN)

    def mean_of(keep) -> float:
        return float(np.mean([i for i, d in enumerate(draws) if keep(d)]))

    assert float(guesses["exact plan"][0, 0, 0, 0]) == draws.index(PLAN)
    assert float(guesses["names size, colour"][0, 0, 0, 0]) == mean_of(
        lambda d: (d.text, d.size, d.fill) == ("OPEN", "large", "red"))
    assert float(guesses["today"][0, 0, 0, 0]) == mean_of(lambda d: d.text == "OPEN")
    assert float(guesses["words unknown"][0, 0, 0, 0]) == mean_of(lambda d: True)


def test_a_text_pair_scored_end_to_end_draws_its_own_target_again(tmp_path: Path):
    photo = cv2.resize(load_photo("coffee"), (272, 144), interpolation=cv2.INTER_AREA)
    frames = np.stack([np.ascontiguousarray(photo[:, t : t + 256]) for t in range(16)])  # (T, H, W, 3): a pan
    result = get_editor("add_text", TextConfig(kind="sign", motion="moving")).edit(
        EditInput(frames, 24.0, seed=5, text_overlay=0.0))
    source, target = result.frames(frames)
    write_clip(tmp_path / "s.mp4", source, 24.0, crf=0)
    write_clip(tmp_path / "t.mp4", target, 24.0, crf=0)
    row = {"source_uri": "s.mp4", "target_uri": "t.mp4", "edit_params": json.dumps(result.params)}
    target_clip, clips = oracles.text_clips(tmp_path, row, load_config("small").model, stride=1)
    score = {name: float(oracles.psnr(c[None], target_clip[None])) for name, c in clips.items()}
    assert score["exact plan"] > score["copy"] + 15  # the plan as the editor drew it, up to the encode
    assert score["exact plan"] > score["names size, colour"] > score["copy"]
    assert score["today"] > score["copy"] and score["words unknown"] > score["copy"]


@pytest.mark.parametrize("edit_type", ["addition", "add_text"])
def test_a_set_without_the_type_is_a_one_line_error(tmp_path, capsys, edit_type):
    root = pair_set(tmp_path / "pairs")  # synthetic edits: no addition, no text
    assert oracles.main([edit_type, str(root), "--config", "tiny"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and f"no readable {edit_type} pairs" in err and "\n" not in err
