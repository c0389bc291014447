"""Pair files (atomic H.264 + RLE mask), the generative plug-in point and instructions."""

from __future__ import annotations

import numpy as np
import pytest

from curation.editors import (
    EditError,
    EditInput,
    MaskFileError,
    get_editor,
    make_instruction,
    read_mask_file,
    write_pair,
)
from curation.editors.generative import GenerativeConfig, GenerativeModel
from curation.editors.instructions import TEMPLATES
from curation.editors.masks import dense_mask
from manifests.media.masks import write_mask_file
from manifests.media.probe import VideoError, probe

H, W, T = 48, 64, 4


def _clip() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (H // 8, W // 8, 3), np.uint8).repeat(8, 0).repeat(8, 1)  # blocky, codec-friendly
    frames = np.stack([np.roll(base, t, axis=1) for t in range(T)])
    mask = np.zeros((T, H, W), bool)
    for t in range(T):
        mask[t, 10:26, 8 + 6 * t : 24 + 6 * t] = True
    frames[mask] = (250, 250, 250)
    return frames, mask


class Invert(GenerativeModel):
    """A user's model as the plug-in point expects it: one class, one method."""

    name = "invert-test"
    weights_id = "none"

    def generate(self, frames, mask, instruction):
        out = frames.copy()
        out[mask] = 255 - out[mask]
        return out


class WrongShape(GenerativeModel):
    name = "wrong-shape"

    def generate(self, frames, mask, instruction):
        return frames[:, :-2]


def test_write_pair_files_are_playable_and_exact(tmp_path):
    frames, mask = _clip()
    inp = EditInput(frames, 24.0, mask, "o3", "square")
    result = get_editor("addition").edit(inp)
    files = write_pair(result, tmp_path, "p1", inp.fps)
    assert files.target is None  # an addition's target is the input clip itself
    info = probe(files.source)
    assert (info.frames, info.width, info.height, info.codec) == (T, W, H, "h264")
    assert np.array_equal(read_mask_file(files.mask), result.mask)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p1.mask.npz", "p1.source.mp4"]  # no temp files left


def test_failed_write_leaves_no_file(tmp_path):
    frames, mask = _clip()
    result = get_editor("style").edit(EditInput(frames, 24.0))
    odd = type(result)(**{**result.__dict__, "target": result.target[:, :, :-1]})  # odd width: H.264 refuses
    with pytest.raises(VideoError, match="even"):
        write_pair(odd, tmp_path, "bad", 24.0)
    assert list(tmp_path.iterdir()) == []


def test_mask_file_round_trip_and_errors(tmp_path):
    _, mask = _clip()
    mask[2] = False  # an empty frame is stored as no entry and read back as empty
    path = write_mask_file(tmp_path / "m.npz", mask)
    assert np.array_equal(read_mask_file(path), mask)
    with pytest.raises(MaskFileError, match="no such mask file"):
        read_mask_file(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(MaskFileError, match="not a mask file"):
        read_mask_file(tmp_path / "junk.npz")
    np.savez(tmp_path / "bad_rle.npz", shape=np.array([T, H, W]), frames=np.array([0]), rle=np.array(["zz"]))
    with pytest.raises(MaskFileError, match="frame 0"):
        read_mask_file(tmp_path / "bad_rle.npz")
    assert issubclass(MaskFileError, EditError)


def test_dense_mask_from_a_track():
    _, mask = _clip()
    assert np.array_equal(dense_mask(np.array([1, 3]), mask[[1, 3]], T)[[1, 3]], mask[[1, 3]])
    with pytest.raises(MaskFileError, match="outside a clip"):
        dense_mask(np.array([0, T]), mask[:2], T)


def test_generative_plug_in(tmp_path):
    frames, mask = _clip()
    editor = get_editor("generative", GenerativeConfig(model="test_editors_io:Invert", edit_type="recolour",
                                                           slots={"colour": "negative"}))
    editor.setup()
    result = editor.edit(EditInput(frames, 24.0, mask, "o1", "square", seed=2))
    assert result.edit_type == "recolour" and result.model_name == "invert-test"
    assert make_instruction(result.edit_type, result.slots, 2).text.count("negative") == 1
    assert np.array_equal(result.target[mask], 255 - frames[mask]) and np.array_equal(result.target[~mask], frames[~mask])
    with pytest.raises(EditError, match="returned"):
        get_editor("generative", GenerativeConfig(model="test_editors_io:WrongShape")).edit(EditInput(frames, 24.0, mask))
    with pytest.raises(EditError, match="cannot load generative model"):
        get_editor("generative", GenerativeConfig(model="no_such_module:Model"))
    with pytest.raises(EditError, match="not a GenerativeModel"):
        get_editor("generative", GenerativeConfig(model="numpy:ndarray"))


def test_weights_free_example_inpaints_inside_only():
    frames, mask = _clip()
    result = get_editor("generative").edit(EditInput(frames, 24.0, mask, "o1", "square"))
    assert result.model_name == "opencv-telea" and result.edit_type == "removal"
    assert np.array_equal(result.target[~mask], frames[~mask])
    assert (result.target[mask] != 250).any(axis=-1).mean() > 0.9  # the white square is gone


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_every_template_fills_and_phrasings_vary_by_seed(key):
    edit_type, _, sub = key.partition("/")
    slots = {"object": "horse", "colour": "blue", "background": "a brick wall", "style": "sepia",
             "mode": sub or "blur", "family": sub or "art", "text": "OPEN", "kind": "sign", "place": "on the left",
             "motion": "moving", "size": "large", "font": "sans bold"}
    texts = {make_instruction(edit_type, slots, seed).text for seed in range(24)}
    assert len(texts) == len(TEMPLATES[key]) >= 3
    assert all("{" not in t and t.endswith(".") for t in texts)
    assert make_instruction(edit_type, slots, 5) == make_instruction(edit_type, slots, 5)


def test_instruction_rewrite_hook():
    slots = {"object": "horse", "colour": "red"}
    out = make_instruction("recolour", slots, 0, rewrite=lambda text, s: f"Please paint the {s['object']} red.")
    assert out.rewritten and out.text == "Please paint the horse red." and out.template.startswith("recolour#")

    def broken(text, s):
        raise TimeoutError("VLM timed out")

    kept = make_instruction("recolour", slots, 0, rewrite=broken)
    assert not kept.rewritten and kept.text == make_instruction("recolour", slots, 0).text
    assert "TimeoutError" in kept.rewrite_note
    for bad in ("", "two\nlines", "x" * 400, None):
        assert not make_instruction("recolour", slots, 0, rewrite=lambda t, s, b=bad: b).rewritten
    with pytest.raises(EditError, match="needs slot"):
        make_instruction("recolour", {"object": "horse"}, 0)
    with pytest.raises(EditError, match="no instruction templates"):
        make_instruction("teleport", slots, 0)


def test_instruction_for_every_editor_result():
    frames, mask = _clip()
    inp = EditInput(frames, 24.0, mask, "o1", "square", seed=7)
    for name in ("removal", "addition", "recolour", "background", "style"):
        result = get_editor(name).edit(inp)
        text = make_instruction(result.edit_type, result.slots, inp.seed).text
        assert text and "{" not in text
    assert make_instruction("addition", {"object": "ellipse"}, 0).text.count("an ellipse") == 1


def test_objects_without_a_class_are_described_by_appearance_and_place():
    from curation.editors.instructions import colour_name, describe_object, size_name
    from curation.pair_rows import object_name

    frames = np.full((4, 90, 160, 3), 60, np.uint8)
    small = np.zeros((4, 90, 160), bool)
    small[:, 10:20, 5:25] = True  # 200 px of 14,400 (1.4 %): tiny, centred at (9.4%, 16.7%)
    frames[small] = (220, 30, 30)
    assert describe_object(frames, small) == "tiny red rectangular object, 12% wide and 11% tall, at (9%, 17%)"
    large = np.zeros_like(small)
    large[:, 25:75, 60:120] = True  # 21 % of the frame: huge
    frames[large] = (20, 40, 200)
    assert describe_object(frames, large) == "huge blue rectangular object, 38% wide and 56% tall, at (56%, 56%)"
    right = np.zeros_like(small)
    right[:, 45:55, 130:150] = True
    frames[right] = (245, 245, 245)
    assert describe_object(frames, right) == "tiny white rectangular object, 12% wide and 11% tall, at (87%, 56%)"
    assert colour_name(np.array([[120, 70, 20]] * 4, np.uint8)) == "brown"
    shades = {(90, 20, 20): "dark red", (240, 150, 150): "light red", (80, 80, 80): "dark grey",
              (170, 170, 170): "light grey", (128, 128, 128): "grey", (30, 30, 30): "black"}
    for rgb, name in shades.items():
        assert colour_name(np.array([rgb] * 4, np.uint8)) == name
    sized = np.zeros_like(small)
    sized[:, 30:60, 20:56] = True  # 1,080 px: 7.5 % of the frame
    assert describe_object(frames, sized).startswith("large ")
    assert [size_name(a) for a in (0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.2)] == [
        "tiny", "very small", "small", "medium-sized", "large", "very large", "huge"]
    assert object_name("moving-object", frames, small) == describe_object(frames, small)
    assert object_name("traffic_light", frames, small) == "traffic light"  # a real class keeps its name
    assert make_instruction("removal", {"object": object_name("moving-object", frames, large)}, 0).text.count(
        "huge blue rectangular object, 38% wide and 56% tall, at (56%, 56%)") == 1


def test_an_object_that_crosses_the_frame_is_named_by_its_path():
    from curation.editors.instructions import describe_object

    frames = np.full((4, 90, 160, 3), 60, np.uint8)
    path = np.zeros((4, 90, 160), bool)
    for t, (y, x) in enumerate([(5, 5), (30, 45), (45, 85), (70, 130)]):  # top left, down to bottom right
        path[t, y : y + 10, x : x + 20] = True
    frames[path] = (30, 200, 40)
    assert describe_object(frames, path).endswith("object, 12% wide and 11% tall, moving from (9%, 11%) to (87%, 83%)")
    assert describe_object(frames[::-1], path[::-1]).endswith("moving from (87%, 83%) to (9%, 11%)")
    path[0] = path[3] = False  # hidden at both ends: its first and last seen places are what it is named by
    assert describe_object(frames, path).endswith("moving from (34%, 39%) to (59%, 56%)")
    jitter = np.zeros_like(path)
    for t, x in enumerate([10, 14, 8, 12]):  # moves two pixels in all, from its first frame to its last
        jitter[t, 40:50, x : x + 20] = True
    assert describe_object(frames, jitter).endswith("moving from (12%, 50%) to (14%, 50%)")
    still = np.zeros_like(path)
    still[:, 40:50, 10:30] = True
    assert describe_object(frames, still).endswith("at (12%, 50%)")


def test_an_objects_outline_and_box_are_measured_where_the_frame_does_not_cut_it():
    from curation.corpus.render import _shape_mask
    from curation.editors.instructions import describe_object, object_box

    frames = np.full((3, 100, 200, 3), 90, np.uint8)
    for shape, outline in (("rectangle", "rectangular"), ("ellipse", "oval"), ("disc", "oval"), ("horse", "irregular")):
        mask = np.zeros((3, 100, 200), bool)
        mask[:, 20:60, 50:110] = _shape_mask(shape, 60, 40)
        mask[0] = False
        mask[0, 20:60, :30] = _shape_mask(shape, 60, 40)[:, 30:]  # half out of the frame on the left: not measured
        box = object_box(mask)
        assert box is not None and box.outline == outline and (box.width, box.height) == (0.3, 0.4)
        assert f"{outline} object, 30% wide and 40% tall" in describe_object(frames, mask)
    assert object_box(np.zeros((2, 10, 10), bool)) is None
