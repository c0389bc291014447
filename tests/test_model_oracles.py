"""benchmarks/model_oracles.py: an addition's first-frame oracles and its path guesses (the grid they share with
the instructions, the paths they draw, the discs they paint); the draws an add_text plan could have been and the
guesses that average them; the crops every clip is scored on (validation's, and the mean over training's); one
text pair scored end to end (its plan drawn again is its target); and the one-line refusal of a set without the
type."""

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
from manifests.media.masks import write_mask_file

oracles = benchmark_tool("model_oracles")
addition = benchmark_tool("model_oracle_addition")
PLAN = TextPlan(kind="sign", text="OPEN", font="sans", size="large", fill="red", place="on the left",
                motion="static", font_px=17)


def test_addition_oracles_take_the_first_frames_object_and_nothing_else():
    source, target = torch.zeros(3, 4, 6, 6), torch.rand(3, 4, 6, 6)  # (C, T, H, W)
    mask = torch.zeros(4, 6, 6)
    mask[0, 1:3, 1:3] = 1  # the object's first place
    mask[1:, 3:5, 3:5] = 1  # where it moves later: no oracle knows this
    clips = addition.addition_oracles(source, target, mask)
    inside = mask[0].bool()
    first, still = clips["first frame"], clips["held still"]
    assert torch.equal(first[:, 0][:, inside], target[:, 0][:, inside]) and torch.equal(first[:, 1:], source[:, 1:])
    assert torch.equal(first[:, 0][:, ~inside], source[:, 0][:, ~inside])
    for t in range(4):  # frame 0's object in every frame, at its first place; the rest is the source
        assert torch.equal(still[:, t][:, inside], target[:, 0][:, inside])
        assert torch.equal(still[:, t][:, ~inside], source[:, t][:, ~inside])


def test_places_are_the_instructions_grid():
    from curation.editors.instructions import PLACE_EDGES, place_index

    points = torch.cat([torch.rand(200, 2), torch.tensor(PLACE_EDGES)[:, None].expand(-1, 2)])  # edges included
    cells = addition.places(points, PLACE_EDGES)
    assert cells.tolist() == [[place_index(float(x)), place_index(float(y))] for x, y in points]


def test_drawn_paths_keep_to_the_places_named():
    edges, gen = (0.2, 0.4, 0.6, 0.8), torch.Generator().manual_seed(0)
    inside = addition.in_place(torch.tensor([0.1, 0.7]), edges, 500, gen)  # far left column, lower row
    assert inside[:, 0].min() >= 0 and inside[:, 0].max() <= 0.2 and inside[:, 1].min() >= 0.6
    assert inside[:, 1].max() <= 0.8 and inside[:, 0].max() - inside[:, 0].min() > 0.15  # spread over the place
    starts, ends = addition.paths_through(torch.tensor([0.05, 0.05]), edges, 300, gen)  # a corner: rarely hit
    assert len(starts) == len(ends) == 300
    assert (addition.places((starts + ends) / 2, edges) == 0).all()
    assert ends[:, 0].max() > 0.2  # only the midpoint is held to the place


def test_disc_cover_is_the_share_of_paths_over_each_pixel():
    times = torch.tensor([torch.nan, 0.0, 1.0, torch.nan])  # frames 0 and 3 do not show the object
    one = addition.disc_cover(torch.tensor([[0.5, 0.5]]), torch.tensor([[0.5, 0.5]]), 3.0, times, (4, 16, 16))
    assert one[0].sum() == 0 and one[3].sum() == 0
    ys, xs = torch.meshgrid(torch.arange(16) + 0.5, torch.arange(16) + 0.5, indexing="ij")
    assert torch.equal(one[1], ((xs - 8) ** 2 + (ys - 8) ** 2 <= 9).float())
    two = addition.disc_cover(torch.tensor([[0.25, 0.5], [0.75, 0.5]]), torch.tensor([[0.25, 0.5], [0.75, 0.5]]),
                             2.0, times, (4, 16, 16))
    assert set(two.unique().tolist()) == {0.0, 0.5}
    moving = addition.disc_cover(torch.tensor([[0.25, 0.5]]), torch.tensor([[0.75, 0.5]]), 2.0, times, (4, 16, 16))
    assert moving[1, 8, 4] == 1 and moving[2, 8, 12] == 1 and moving[1, 8, 12] == 0  # start at time 0, end at 1


def test_the_named_path_is_measured_on_the_whole_clip_as_the_instruction_is():
    mask = np.zeros((24, 90, 160), bool)
    for t in range(2, 20):  # shown in frames 2..19, moving right
        mask[t, 40:50, 5 + 6 * t : 25 + 6 * t] = True
    named = addition.named_path(mask)
    assert (named.first, named.last) == (2, 19)
    assert torch.allclose(named.start, torch.tensor([27 / 160, 45 / 90]))  # pixel centres, as describe_object
    assert torch.allclose(named.end, torch.tensor([129 / 160, 45 / 90]))
    times = addition.path_times([0, 2, 10, 19, 23], named.first, named.last)  # clip frames a sample reads
    assert times[0].isnan() and times[4].isnan() and times[1:4].tolist() == pytest.approx([0.0, 8 / 17, 1.0])
    with pytest.raises(oracles.EditError, match="shows it in 1 of 24 frames"):
        addition.named_path(mask & (np.arange(24) == 5)[:, None, None])


def test_addition_guesses_know_what_their_names_say():
    frames, size = 8, 32
    source = torch.full((3, frames, size, size), -0.5)  # (C, T, H, W)
    target, mask = source.clone(), torch.zeros(frames, size, size)
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    for t in range(frames):  # a red disc from the upper left to the lower right
        x, y = 8 + 2 * t, 8 + 2 * t
        disc = (xs - x) ** 2 + (ys - y) ** 2 <= 16
        target[:, t][:, disc] = torch.tensor([0.8, -0.8, 0.0])[:, None]
        mask[t][(xs - x) ** 2 + (ys - y) ** 2 <= 36] = 1
    named = addition.NamedPath(torch.tensor([0.25, 0.25]), torch.tensor([0.69, 0.69]), 0, frames - 1,
                              torch.tensor([0.47, 0.47]))  # centres 8 and 22 of 32 pixels
    times = torch.linspace(0, 1, frames)
    windows = [torch.cat([times[:4], torch.full((4,), torch.nan)])] * 2  # frames training reads: the first half
    exact, drawn, trained = addition.addition_guesses(source, target, mask, named, times, (0.2, 0.4, 0.6, 0.8),
                                                     torch.Generator().manual_seed(0), windows)
    clips = {**exact, **{name: clip for name, (clip, _) in drawn.items()}}
    score = {name: float(oracles.psnr(c[None], target[None])) for name, c in clips.items()}
    copy = float(oracles.psnr(source[None], target[None]))
    assert torch.allclose(clips["flat, true shape"], target)  # one colour: its own pixels in it are the target
    assert score["disc, exact path"] > copy + 15
    assert score["disc, exact path"] > score["named path"] > score["named place"] > copy
    guess, share = drawn["named path"]  # the colour blended over the source by the share of discs over a pixel
    assert torch.allclose(guess, source + share * (torch.tensor([0.8, -0.8, 0.0])[:, None, None, None] - source), atol=1e-6)
    assert trained["named path"][1][0].sum() > 0 and trained["named path"][1][4:].sum() == 0
    still = target.clone()
    still[:, 1:] = source[:, 1:]  # shown in one frame only: no path
    with pytest.raises(oracles.EditError, match="shows in 1 of 8 frames"):
        addition.added_object(source, still, mask)


def test_an_instructions_words_are_read_as_describe_object_wrote_them():
    from curation.editors.instructions import describe_object

    frames = np.zeros((6, 90, 160, 3), np.uint8)
    mask = np.zeros((6, 90, 160), bool)
    mask[:, 10:50, 20:80] = True  # 17 % of the frame: huge
    frames[mask] = (200, 30, 30)
    text = f"Put a {describe_object(frames, mask)} into the scene."
    assert addition.instruction_words(text) == addition.ObjectWords("huge", "red", "rectangular", (0.38, 0.44))
    assert addition.instruction_words("Insert a very small light grey object at (4%, 46%) into the video.") == (
        addition.ObjectWords("very small", "light grey"))  # pairs before stage 1.5: no outline, no box
    assert addition.instruction_words("Bring a small dark brown oval object, 7% wide and 12% tall, moving from (39%, 46%) "
                                      "to (61%, 46%) into the shot.") == addition.ObjectWords("small", "dark brown", "oval",
                                                                                              (0.07, 0.12))
    assert addition.instruction_words("Add a horse running to the left.") == addition.ObjectWords("?", "?")  # its class


def _object(colour: list[float], radius: float, box: tuple[int, int] = (4, 4)) -> addition.AddedObject:
    pixels = torch.zeros(2, 8, 8, dtype=torch.bool)
    pixels[:, : box[1], : box[0]] = True
    return addition.AddedObject(pixels, torch.tensor(colour), radius, torch.arange(2), torch.zeros(2, 2))


def test_the_word_prior_is_each_words_mean_and_paints_the_named_paths_draws():
    words = addition.ObjectWords
    disc = torch.zeros(8, 8, dtype=torch.bool)
    disc[1:3, 1:3] = disc[0, 1:3] = disc[3, 1:3] = disc[1:3, 0] = disc[1:3, 3] = True  # a 4 x 4 box's disc
    oval = addition.AddedObject(torch.stack([disc, disc]), torch.tensor([0.0, 0.0, 1.0]), 2.0, torch.arange(2),
                                torch.zeros(2, 2))
    prior = addition.WordPrior.fit([(words("large", "red", "rectangular"), _object([1.0, 0.0, 0.0], 6.0)),
                                    (words("large", "red", "rectangular"), _object([0.6, 0.2, 0.0], 8.0, (3, 5))),
                                    (words("", "blue", "oval"), oval)])
    colour, radius = prior.of(words("large", "red"))
    assert torch.allclose(colour, torch.tensor([0.8, 0.1, 0.0])) and radius == pytest.approx(50**0.5)
    colour, radius = prior.of(words("small", "green"))  # words the split never used: the mean over every object
    assert torch.allclose(colour, torch.tensor([1.6 / 3, 0.2 / 3, 1 / 3])) and radius == pytest.approx((104 / 3) ** 0.5)
    assert torch.equal(prior.outline(words("large", "red", "rectangular")), torch.ones(24, 24))  # boxes fill their box
    corner = prior.outline(words("large", "red", "oval"))
    assert corner[0, 0] == 0 and corner[12, 12] == 1  # a disc leaves its box's corners
    assert torch.allclose(prior.outline(words("?", "?")), (2 * torch.ones(24, 24) + corner) / 3)
    frames, size = 8, 32
    source, target, mask = torch.full((3, frames, size, size), -0.5), None, torch.zeros(frames, size, size)
    target = source.clone()
    target[:, :, 10:14, 10:14] = torch.tensor([0.8, -0.8, 0.0])[:, None, None, None]  # an object held still
    mask[:, 10:14, 10:14] = 1
    own = addition.added_object(source, target, mask)
    named = addition.NamedPath(torch.tensor([0.375, 0.375]), torch.tensor([0.375, 0.375]), 0, frames - 1,
                              torch.tensor([0.375, 0.375]))
    times = torch.linspace(0, 1, frames)

    def guesses(worded: tuple[torch.Tensor, float]) -> dict:  # a box template: a box 4 pixels wide and tall
        return addition.addition_guesses(source, target, mask, named, times, (0.2, 0.4, 0.6, 0.8),
                                        torch.Generator().manual_seed(0), worded=worded,
                                        boxed=(torch.ones(24, 24), (4 / size, 4 / size)))[1]

    same = guesses((own.colour, own.radius))  # words that tell the object's own colour and size
    assert torch.equal(same["named path, its words"][0], same["named path"][0])
    other = guesses((torch.tensor([0.0, 0.0, 1.0]), own.radius))
    for name in ("named path, its words", "named box, its words"):  # painted in the words' colour, by its cover
        clip, cover = other[name]
        assert torch.allclose(clip, source + cover * (torch.tensor([0.0, 0.0, 1.0])[:, None, None, None] - source))
    assert other["named box, its words"][1].sum() == pytest.approx(frames * 16, rel=1e-4)  # the 4 x 4 box, moved


def test_a_box_cover_is_its_template_stretched_to_the_box_on_the_path():
    still = torch.tensor([[0.375, 0.375]])  # (1, 2): one path held at pixel (12, 12) of a 32 x 32 frame
    cover = addition.box_cover(still, still, torch.ones(24, 24), (4.0, 6.0), torch.tensor([0.0, torch.nan]), (2, 32, 32))
    expected = torch.zeros(2, 32, 32)
    expected[0, 9:15, 10:14] = 1  # 4 wide, 6 tall, centred on (12, 12); no cover where the object is not shown
    assert torch.equal(cover, expected)


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
    found = oracles.text_guesses(PLAN, clips, torch.zeros(3, 1, 1, 1))
    assert set(found) == set(oracles.KNOWN)
    guesses = {name: clip for name, (clip, _) in found.items()}
    assert float(found["words unknown"][1].squeeze()) == pytest.approx((len(draws) - 1) / len(draws))  # not draw 0

    def mean_of(keep) -> float:
        return float(np.mean([i for i, d in enumerate(draws) if keep(d)]))

    assert float(guesses["exact plan"][0, 0, 0, 0]) == draws.index(PLAN)
    assert float(guesses["names size, colour"][0, 0, 0, 0]) == mean_of(
        lambda d: (d.text, d.size, d.fill) == ("OPEN", "large", "red"))
    assert float(guesses["the text"][0, 0, 0, 0]) == mean_of(lambda d: d.text == "OPEN")
    assert float(guesses["words unknown"][0, 0, 0, 0]) == mean_of(lambda d: True)


def test_crop_views_take_validations_crop_and_the_mean_of_every_training_crop():
    cfg = load_config("tiny").model  # a 32 x 32 bucket
    source = torch.zeros(3, 1, 32, 36)  # (C, T, H, W): the whole frame, 4 px wider than the bucket
    target = torch.rand(3, 1, 32, 36)
    change = torch.zeros(1, 32, 36)
    change[:, :, 4] = 1  # one column: at column 2 of the middle crop (offset 2), at 4 - offset in the others
    guess, exact = source + 0.6 * change, {"known": target.clone()}
    cropped = oracles.crop_views(source, target, change, exact, {"g": (guess, change)}, cfg, cut=0.5)
    tgt, views = cropped.target, cropped.clips
    middle = (slice(None), slice(None), slice(0, 32), slice(2, 34))
    assert torch.equal(tgt, target[middle]) and torch.equal(views["known"], target[middle])
    assert torch.equal(cropped.kept, 1 - change[middle[1:]])  # the kept region: all but the column
    assert set(views) == {"copy", "known", "g", "g, cut 0.5", "g, random draws", "g, random draws, cut 0.5"}
    assert torch.equal(views["g"], guess[middle]) and torch.equal(views["g, cut 0.5"], guess[middle])
    blind = views["g, random draws"]  # each of the 5 crops puts the column elsewhere: a fifth of it in each
    assert torch.allclose(blind[:, :, :, :5], torch.full((3, 1, 32, 5), 0.6 / 5)) and blind[:, :, :, 5:].eq(0).all()
    assert torch.equal(views["g, random draws, cut 0.5"], views["copy"])  # no pixel changed in half the crops


def test_a_text_pair_scored_end_to_end_draws_its_own_target_again(tmp_path: Path):
    photo = cv2.resize(load_photo("coffee"), (272, 144), interpolation=cv2.INTER_AREA)
    frames = np.stack([np.ascontiguousarray(photo[:, t : t + 256]) for t in range(16)])  # (T, H, W, 3): a pan
    result = get_editor("add_text", TextConfig(kind="sign", motion="moving")).edit(
        EditInput(frames, 24.0, seed=5, text_overlay=0.0))
    source, target = result.frames(frames)
    write_clip(tmp_path / "s.mp4", source, 24.0, crf=0)
    write_clip(tmp_path / "t.mp4", target, 24.0, crf=0)
    write_mask_file(tmp_path / "m.npz", result.mask)
    row = {"source_uri": "s.mp4", "target_uri": "t.mp4", "mask_uri": "m.npz", "edit_params": json.dumps(result.params)}
    views = oracles.text_clips(tmp_path, row, load_config("small").model, stride=1, cut=0.5)
    score = {name: float(oracles.psnr(c[None], views.target[None])) for name, c in views.clips.items()}
    kept = {name: float(oracles.psnr(c[None], views.target[None], views.kept[None])) for name, c in views.clips.items()}
    # the exact plan is the target up to the encode, the soft edge of the scaled mask included; a guess over sizes
    # and fonts paints, even under the cut, where some draws have letters and this one has none
    assert kept["exact plan"] > kept["copy"] and kept["the text, cut 0.5"] < kept["exact plan, cut 0.5"] - 3
    assert score["exact plan"] > score["copy"] + 15  # the plan as the editor drew it, up to the encode
    assert score["exact plan"] > score["names size, colour"] > score["copy"]
    assert score["the text"] > score["copy"] and score["words unknown"] > score["copy"]


@pytest.mark.parametrize("edit_type", ["addition", "add_text"])
def test_a_set_without_the_type_is_a_one_line_error(tmp_path, capsys, edit_type):
    root = pair_set(tmp_path / "pairs")  # synthetic edits: no addition, no text
    assert oracles.main([edit_type, str(root), "--config", "tiny"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and f"no readable {edit_type} pairs" in err and "\n" not in err


def test_words_taught_by_several_sets_without_additions_is_a_one_line_error(tmp_path, capsys):
    root = pair_set(tmp_path / "pairs")  # synthetic edits: no addition to learn the words from
    assert oracles.main(["addition", str(root), "--config", "tiny", "--prior-from", str(root),
                         "--prior-from", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and err.count(str(root)) == 2 and "no readable addition pairs to learn" in err
    assert "\n" not in err
