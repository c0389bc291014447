"""Editors on tiny clips: outside a local edit's region the written target equals the source within
codec error, inside it differs; removal recovers the true background; bad inputs raise EditError."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from curation.corpus.photos import load_photo
from curation.editors import EDITOR_NAMES, EditError, EditInput, get_editor, write_pair
from curation.editors.background import BackgroundConfig
from curation.editors.output import write_clip
from curation.editors.recolour import RecolourConfig
from curation.editors.style import STYLES, StyleConfig
from filters.pair_gates import edit_regions, psnr
from manifests.media.decode import read_frames

H, W, T = 64, 80, 6


def _photo(name: str = "coffee", size: tuple[int, int] = (240, 160)) -> np.ndarray:
    return cv2.resize(load_photo(name), size, interpolation=cv2.INTER_AREA)


def make_clip(pan_px: int = 0, frames: int = T, top: int = 20, step: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames, object mask, true background): a textured square moving right over a photo that pans."""
    photo = _photo()
    sprite = _photo("astronaut", (96, 96))[20:36, 40:56]  # a face-sized patch, texture a codec can keep
    out, masks, truth = [], [], []
    for t in range(frames):
        bg = np.ascontiguousarray(photo[40 : 40 + H, 60 + pan_px * t : 60 + pan_px * t + W])
        x0 = 6 + step * t
        x1 = min(W, x0 + 16)
        m = np.zeros((H, W), bool)
        m[top : top + 16, x0:x1] = True
        f = bg.copy()
        f[top : top + 16, x0:x1] = sprite[:, : x1 - x0]
        out.append(f)
        masks.append(m)
        truth.append(bg)
    return np.stack(out), np.stack(masks), np.stack(truth)


@pytest.fixture(scope="module")
def clip():
    return make_clip()


def decoded(frames: np.ndarray, tmp_path) -> np.ndarray:
    """The frames as a stage sees an extracted clip: H.264 (CRF 20, as the corpus) and decoded back."""
    return read_frames(write_clip(tmp_path / "clip.mp4", frames, 25.0, crf=20))


def codec_floor(frames: np.ndarray, where: np.ndarray, tmp_path) -> float:
    """PSNR over `where` of the unchanged frames re-encoded at the pair CRF: the codec's own error."""
    return psnr(frames, read_frames(write_clip(tmp_path / "same.mp4", frames, 25.0)), where)


def _written(result, inp: EditInput, tmp_path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Decoded (source, target) of the pair as written; the input clip stands for itself."""
    files = write_pair(result, tmp_path, name, inp.fps)
    source = inp.frames if files.source is None else read_frames(files.source)
    target = inp.frames if files.target is None else read_frames(files.target)
    return source, target


@pytest.mark.parametrize("name,config", [
    ("removal", None), ("addition", None), ("recolour", RecolourConfig(colour="green")),
    ("background", BackgroundConfig(mode="blur")), ("background", BackgroundConfig(mode="desaturate")),
    ("background", BackgroundConfig(mode="replace", backdrop="brick")),
])
def test_local_edit_keeps_outside_and_changes_inside(clip, tmp_path, name, config):
    frames, mask, _ = clip
    frames = decoded(frames, tmp_path)
    inp = EditInput(frames, 25.0, mask, "o1", "square", seed=1)
    result = get_editor(name, config).edit(inp)
    assert result.edit_type == name and result.mask is not None and result.mask.shape == mask.shape
    source, target = _written(result, inp, tmp_path, f"{name}_pair")
    edited, kept = edit_regions(result.mask, result.region, mask.shape, margin_px=4)
    # kept pixels differ by re-encoding error only: about what re-encoding the unchanged clip costs
    assert psnr(source, target, kept) >= min(38.0, codec_floor(frames, kept, tmp_path) - 1.5)
    assert psnr(source, target, edited) < 30.0
    # before encoding, the kept pixels are untouched bit for bit
    raw_source, raw_target = result.frames(frames)
    assert np.array_equal(raw_source[kept], raw_target[kept])


def test_removal_copies_the_true_background_on_a_static_camera(clip):
    frames, mask, truth = clip
    result = get_editor("removal").edit(EditInput(frames, 25.0, mask, "o1", "square"))
    assert result.params["temporal_fill_fraction"] == 1.0
    assert np.array_equal(result.target[result.mask], truth[result.mask])


def test_removal_compensates_a_panning_camera():
    frames, mask, truth = make_clip(pan_px=3)
    result = get_editor("removal").edit(EditInput(frames, 25.0, mask, "o1", "square"))
    inside = result.mask
    aligned = psnr(result.target, truth, inside)
    unaligned = psnr(np.repeat(truth[:1], len(truth), axis=0), truth, inside)  # what ignoring motion would copy
    assert aligned >= 28.0 and aligned > unaligned + 5
    assert result.params["motion_failed_steps"] == 0


def test_removal_never_copies_another_object(clip):
    frames, mask, truth = clip
    other = np.zeros_like(mask)
    other[:, 38:50, 30:40] = True  # a still second object just below the path, inside its dilated hole
    frames = frames.copy()
    frames[other] = (255, 0, 255)
    result = get_editor("removal").edit(EditInput(frames, 25.0, mask, "o1", "square", others=other))
    magenta = np.all(result.target == (255, 0, 255), axis=-1)
    assert not (magenta & result.mask & ~other).any()
    assert not (result.mask & other).any() and np.array_equal(result.target[other], frames[other])


def test_addition_is_the_reverse_of_removal(clip):
    frames, mask, _ = clip
    inp = EditInput(frames, 25.0, mask, "o1", "square")
    removal, addition = get_editor("removal").edit(inp), get_editor("addition").edit(inp)
    assert addition.target is None and removal.source is None
    assert np.array_equal(addition.source, removal.target)
    assert addition.slots == {"object": "square"}


def test_recolour_sets_the_named_hue(clip):
    frames, mask, _ = clip
    result = get_editor("recolour", RecolourConfig(colour="blue")).edit(EditInput(frames, 25.0, mask))
    hsv = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2HSV_FULL) for f in result.target])[mask]
    saturated = hsv[hsv[:, 2] > 40]
    hue_deg = saturated[:, 0].astype(float) * 360 / 256
    assert np.median(np.abs(hue_deg - 225)) < 12
    assert result.slots["colour"] == "blue"


def test_seeded_choices_are_deterministic_and_vary(clip):
    frames, mask, _ = clip
    picks = set()
    for seed in range(12):
        a = get_editor("style").edit(EditInput(frames, 25.0, seed=seed))
        b = get_editor("style").edit(EditInput(frames, 25.0, seed=seed))
        assert a.params == b.params and np.array_equal(a.target, b.target)
        picks.add(a.params["style"])
    assert len(picks) >= 3


@pytest.mark.parametrize("style", sorted(STYLES))
def test_every_style_changes_every_frame(clip, style):
    frames, _, _ = clip
    result = get_editor("style", StyleConfig(style=style)).edit(EditInput(frames, 25.0))
    assert result.region == "global" and result.mask is None and result.target.shape == frames.shape
    for t in range(len(frames)):
        assert psnr(frames[t : t + 1], result.target[t : t + 1]) < 30.0


def test_registry_names_every_editor():
    assert set(EDITOR_NAMES) >= {"removal", "addition", "recolour", "background", "style", "generative"}
    with pytest.raises(EditError, match="unknown editor 'nope'"):
        get_editor("nope")
    with pytest.raises(EditError, match="unknown colour"):
        RecolourConfig(colour="octarine")


# --- bad inputs: each is an EditError (a later stage turns it into an `errors` row) --------------

@pytest.mark.parametrize("name", ["removal", "addition", "recolour", "background"])
def test_empty_mask_and_no_objects(clip, name):
    frames, mask, _ = clip
    with pytest.raises(EditError, match="empty on every frame"):
        get_editor(name).edit(EditInput(frames, 25.0, np.zeros_like(mask), "o9"))
    with pytest.raises(EditError, match="clip has no objects"):
        get_editor(name).edit(EditInput(frames, 25.0, None))


@pytest.mark.parametrize("name", ["removal", "recolour", "style"])
def test_one_frame_clip(clip, name):
    frames, mask, _ = clip
    with pytest.raises(EditError, match="1 frame"):
        get_editor(name).edit(EditInput(frames[:1], 25.0, mask[:1]))


def test_malformed_inputs(clip):
    frames, mask, _ = clip
    editor = get_editor("recolour")
    with pytest.raises(EditError, match="uint8"):
        editor.edit(EditInput(frames.astype(np.float32), 25.0, mask))
    with pytest.raises(EditError, match="mask must be bool"):
        editor.edit(EditInput(frames, 25.0, mask.astype(np.uint8)))
    with pytest.raises(EditError, match="mask must be bool"):
        editor.edit(EditInput(frames, 25.0, mask[:, :, :-2]))
    with pytest.raises(EditError, match="even"):
        editor.edit(EditInput(frames[:, :, :-1], 25.0, mask[:, :, :-1]))
    with pytest.raises(EditError, match="fps"):
        editor.edit(EditInput(frames, 0.0, mask))


@pytest.mark.parametrize("name", ["removal", "recolour", "background"])
def test_mask_touching_the_border(tmp_path, name):
    frames, mask, truth = make_clip(top=0, step=12)  # touches the top edge, then leaves at the right
    assert mask[:, 0, :].any() and mask[-1, :, -1].any()
    inp = EditInput(decoded(frames, tmp_path), 25.0, mask, "o1", "square")
    result = get_editor(name).edit(inp)
    source, target = _written(result, inp, tmp_path, f"border_{name}")
    edited, kept = edit_regions(result.mask, result.region, mask.shape, margin_px=4)
    assert psnr(source, target, kept) >= min(38.0, codec_floor(inp.frames, kept, tmp_path) - 1.5)
    assert psnr(source, target, edited) < 30.0


def test_removal_against_the_corpus_truth():
    """On a corpus shot with its camera held still, removal matches the true background where some
    frame shows it; the truth differs from the clip only where the object was."""
    from curation.corpus.backgrounds import removal_truth, render_range, static_camera
    from curation.corpus.plan import plan_video

    plan = static_camera(plan_video(0, 0, True, lambda name: load_photo(name).shape[:2]))
    shot = next(s for s in plan.shots if any(o.first == s.pure_start for o in plan.objects))
    frames, masks = render_range(plan, shot.pure_start, shot.pure_end)
    oid = min(masks)
    others = np.zeros_like(masks[oid])
    for other in set(masks) - {oid}:
        others |= masks[other]
    truth, background_shows = removal_truth(plan, oid, shot.pure_start, shot.pure_end)
    assert np.array_equal(truth[~masks[oid]], frames[~masks[oid]])
    result = get_editor("removal").edit(EditInput(frames, float(plan.fps), masks[oid], str(oid), others=others))
    assert psnr(result.target, truth, result.mask & background_shows) >= 28.0
