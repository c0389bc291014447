"""Text edits (issue 22, item 3): rendered text added to a clip and the reverse removal. Exact targets (only
the glyph mask changes), masks from the rendered glyphs, instructions that quote the text, fonts from the
installed matplotlib wheel, and only on sources whose OCR signal found no text; also through the pairs stage."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from curation.corpus.photos import load_photo
from curation.editors import EditError, EditInput, get_editor, make_instruction, read_mask_file
from curation.editors.text import FONTS, KINDS, TextConfig, font_path
from curation.stage import WorkUnit
from curation.stages.pairs import PairsConfig, PairsStage
from filters.pair_gates import psnr
from manifests.media.decode import read_frames
from manifests.media.encode import VideoWriter

T, H, W = 8, 90, 160


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    photo = cv2.resize(load_photo("coffee"), (W + 2 * T, H), interpolation=cv2.INTER_AREA)
    return np.stack([np.ascontiguousarray(photo[:, t : t + W]) for t in range(T)])  # a slow pan


def test_fonts_are_the_bundled_dejavu_files() -> None:
    import matplotlib

    for name in FONTS:
        path = font_path(name)
        assert path.is_file() and path.suffix == ".ttf" and Path(matplotlib.get_data_path()) in path.parents


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("motion", ["static", "moving"])
def test_addition_changes_only_the_glyphs(frames: np.ndarray, kind: str, motion: str) -> None:
    editor = get_editor("add_text", TextConfig(kind=kind, motion=motion))
    result = editor.edit(EditInput(frames, 25.0, seed=7, text_overlay=0.0))
    source, target = result.frames(frames)
    assert result.source is None and result.region == "inside" and result.mask is not None
    changed = (source != target).any(axis=-1)
    assert not changed[~result.mask].any()  # exact: every pixel outside the glyphs is the source's own
    assert changed[result.mask].mean() > 0.5  # and most glyph pixels differ
    assert all(m.any() for m in result.mask)  # the text is on every frame, inside it
    rows, cols = np.nonzero(result.mask.any(axis=0))
    assert cols.max() - cols.min() < W and rows.max() < H
    first, last = (np.nonzero(m.any(axis=0))[0].min() for m in (result.mask[0], result.mask[-1]))
    assert (first > last) if motion == "moving" and 0 < first else (first == last or motion == "moving")
    assert result.slots["kind"] == kind and result.params["text"] == result.slots["text"]


def test_removal_is_the_addition_reversed(frames: np.ndarray) -> None:
    inp = EditInput(frames, 25.0, seed=3, text_overlay=0.001)
    added = get_editor("add_text").edit(inp)
    removed = get_editor("remove_text").edit(inp)
    assert removed.edit_type == "remove_text" and removed.target is None
    assert np.array_equal(removed.source, added.target) and np.array_equal(removed.mask, added.mask)
    assert removed.params == added.params


def test_instructions_quote_the_text(frames: np.ndarray) -> None:
    for seed in range(6):
        for name in ("add_text", "remove_text"):
            result = get_editor(name).edit(EditInput(frames, 25.0, seed=seed, text_overlay=0.0))
            text = make_instruction(result.edit_type, result.slots, seed).text
            assert f'"{result.slots["text"]}"' in text and "{" not in text
            assert not any(f'{mark}".' in text for mark in ".!?")  # a quote ending a sentence ends it
    slots = {"text": "Look over there!", "kind": "subtitle", "place": "at the bottom", "motion": "static",
             "size": "small", "colour": "white", "font": "mono"}
    texts = {make_instruction(name, slots, s).text for name in ("add_text", "remove_text") for s in range(20)}
    assert 'Take out the subtitle that says "Look over there!"' in texts and not any('!".' in t for t in texts)
    assert 'Write "Look over there!" in small white mono letters at the bottom.' in texts
    moving = get_editor("add_text", TextConfig(motion="moving", kind="caption", text="Day 3", size="large"))
    result = moving.edit(EditInput(frames, 25.0, seed=1, text_overlay=0.0))
    lettering = f'large {result.params["fill"]} {result.params["font"]} letters'
    assert {make_instruction("add_text", result.slots, s).text for s in range(12)} >= {
        f'Write "Day 3" in {lettering} ' + result.slots["place"] + ", sliding slowly to the left."}


def test_an_added_texts_instruction_names_the_lettering_it_was_drawn_in(frames: np.ndarray) -> None:
    # Size, colour and font fix where the text's pixels end; unnamed, a model can only smear over every draw
    # (docs/MODEL.md, "What an added text's instruction allows").
    for seed in range(8):
        result = get_editor("add_text").edit(EditInput(frames, 25.0, seed=seed, text_overlay=0.0))
        p = result.params
        for s in range(5):
            text = make_instruction("add_text", result.slots, s).text
            assert f' in {p["size"]} {p["fill"]} {p["font"]} letters ' in text, text


def test_text_edits_need_a_source_the_ocr_signal_found_clean(frames: np.ndarray) -> None:
    editor = get_editor("add_text")
    assert editor.accepts(0.0) and not editor.accepts(0.05) and not editor.accepts(None)
    assert get_editor("removal").accepts(None)  # other editors do not care
    for value in (None, 0.05):
        with pytest.raises(EditError, match="needs a source without text"):
            get_editor("remove_text").edit(EditInput(frames, 25.0, text_overlay=value))


def test_small_frames_shrink_the_font_to_fit() -> None:
    tiny = np.full((2, 48, 64, 3), 90, np.uint8)
    result = get_editor("add_text", TextConfig(kind="subtitle", size="large", text="Not now.")).edit(
        EditInput(tiny, 25.0, seed=0, text_overlay=0.0))
    cols = np.nonzero(result.mask.any(axis=(0, 1)))[0]
    assert cols.max() - cols.min() + 1 <= 0.9 * 64
    with pytest.raises(EditError, match="does not fit a 64 px wide frame"):  # never cropped: the quote must hold
        get_editor("add_text", TextConfig(text="Where did you put the keys?")).edit(
            EditInput(tiny, 25.0, seed=0, text_overlay=0.0))


@pytest.mark.parametrize(("config", "words"), [({"kind": "banner"}, "unknown text kind"),
                                               ({"text": 'say "hi"'}, "double quotes"),
                                               ({"text": "  "}, "non-empty"),
                                               ({"max_source_text": 2.0}, "max_source_text")])
def test_bad_config_is_one_line(config: dict, words: str) -> None:
    with pytest.raises(EditError, match=words):
        TextConfig(**config)


def _clip_file(root: Path, frames: np.ndarray) -> str:
    with VideoWriter(root / "clip.mp4", fps=25.0, crf=10) as writer:
        for f in frames:
            writer.write(f)
    return "clip.mp4"


def test_pairs_stage_makes_text_pairs_only_on_clean_clips(frames: np.ndarray, tmp_path: Path) -> None:
    uri = _clip_file(tmp_path, frames)
    clips = [{"clip_id": c, "video_id": f"v-{c}", "status": "ok", "uri": uri, "fps": 25.0}
             for c in ("clean", "texty", "unmeasured")]
    prov = {"stage": "signals", "stage_version": "1", "model_name": "none", "weights_id": "none"}
    scores = [{"clip_id": "clean", "signal": "text_overlay", "value": 0.0, "passed": True, **prov},
              {"clip_id": "texty", "signal": "text_overlay", "value": 0.3, "passed": False, **prov}]
    stage = PairsStage(PairsConfig(mix={"add_text": 1.0, "remove_text": 1.0, "style": 0.01}, pairs_per_clip=2))
    stage.setup()
    rows = stage.process(WorkUnit("b000000", [], str(tmp_path), tables={"clips": clips, "scores": scores})).rows
    assert rows["errors"] == []
    by_clip = {c: {r["edit_type"]: r for r in rows["edit_pairs"] if r["clip_id"] == c} for c in ("clean", "texty")}
    assert set(by_clip["clean"]) == {"add_text", "remove_text"}
    assert set(by_clip["texty"]) == {"style"}  # text edits barred: only the other type could be drawn
    assert not [r for r in rows["edit_pairs"] if r["clip_id"] == "unmeasured" and "text" in r["edit_type"]]
    add, remove = by_clip["clean"]["add_text"], by_clip["clean"]["remove_text"]
    assert add["source_uri"] == uri and remove["target_uri"] == uri and add["object_id"] is None
    for row in (add, remove):
        params = json.loads(row["edit_params"])
        assert f'"{params["text"]}"' in row["instruction"]
        assert row["gate_connected"] is None and row["gate_mask_area"] is None  # text is not a tracked object
        source, target = read_frames(tmp_path / row["source_uri"]), read_frames(tmp_path / row["target_uri"])
        mask = read_mask_file(tmp_path / row["mask_uri"])
        grown = np.stack([cv2.dilate(m.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0 for m in mask])
        assert psnr(source, target, ~grown) >= 38.0  # outside the glyphs: a re-encode's error only (as test_pairs_stage)
        assert psnr(source, target, mask) < 25.0
        assert {"psnr_edited", "psnr_kept", "flicker"} <= set(row["gates_passed"])
