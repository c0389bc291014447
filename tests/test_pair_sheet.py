"""`manifests sample --pairs`: the PNG and mp4 show each pair's real source, target and mask frames."""

from __future__ import annotations

import json

import av
import cv2
import numpy as np
import pytest
from _manifests_helpers import assert_one_line_error, provenance, run_cli, run_json

from manifests import ManifestWriter
from manifests.media.encode import VideoWriter
from manifests.media.masks import write_mask_file
from manifests.pair_sheet import CAPTION_HEIGHT, HEADER_HEIGHT, preview_indices

W, H, T, FPS = 64, 48, 12, 24.0
PANEL_W, PANEL_H = 240, 180  # the default 180-px panel height at the clips' 4:3 aspect
ROW_H = PANEL_H + CAPTION_HEIGHT
SCALE = PANEL_H / H
BOX = (slice(12, 36), slice(16, 48))  # the local edit's mask, rows and columns of the clip
MASK_FRAMES = range(6, T)  # the mask is empty before frame 6, so the sheet shows frame 9 (the middle of 6..11)
RED, YELLOW = (230, 30, 30), (200, 200, 40)


def source_colour(t: int) -> tuple[int, int, int]:
    """Each frame's colour tells which frame a panel shows (steps of 12, well above H.264's error)."""
    return (40 + 12 * t, 80, 160)


def write_video(path, colours, box_colour=None) -> None:
    with VideoWriter(path, fps=FPS) as writer:
        for colour in colours:
            frame = np.empty((H, W, 3), np.uint8)
            frame[:] = colour
            if box_colour is not None:
                frame[BOX] = box_colour
            writer.write(frame)


def pair_row(pair_id: str, edit_type: str, target: str, mask: str | None) -> dict:
    return {"pair_id": pair_id, "clip_id": "c0", "edit_type": edit_type, "instruction": f"do the {edit_type} edit",
            "source_uri": "clips/c0.mp4", "target_uri": target, "mask_uri": mask, "gates_passed": [], "split": "train",
            **provenance("edits")}


@pytest.fixture(scope="module")
def pairs_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    sources = [source_colour(t) for t in range(T)]
    write_video(root / "clips/c0.mp4", sources)
    write_video(root / "edits/local.mp4", sources, box_colour=RED)
    write_video(root / "edits/global.mp4", [YELLOW] * T)
    (root / "edits/broken.mp4").write_bytes(b"not an mp4 at all")
    mask = np.zeros((T, H, W), bool)
    mask[MASK_FRAMES.start:, BOX[0], BOX[1]] = True
    write_mask_file(root / "edits/local.mask.npz", mask)
    ManifestWriter(root, "edit_pairs").write("u0", [
        pair_row("p-local", "recolour", "edits/local.mp4", "edits/local.mask.npz"),
        pair_row("p-global", "style", "edits/global.mp4", None),
        pair_row("p-missing", "removal", "edits/missing.mp4", "edits/local.mask.npz"),
        pair_row("p-broken", "addition", "edits/broken.mp4", None),
    ])
    return root


@pytest.fixture(scope="module")
def sheet(pairs_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("sheet") / "pairs.png"
    done = run_cli("sample", pairs_root, "--pairs", "--out", out, "--json")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return out, done


def mean_rgb(image: np.ndarray, top: int, left: int, rows: slice, cols: slice) -> np.ndarray:
    """Mean colour of clip region (rows, cols) inside the panel whose top-left corner is (top, left)."""
    r = slice(top + int(rows.start * SCALE), top + int(rows.stop * SCALE))
    c = slice(left + int(cols.start * SCALE), left + int(cols.stop * SCALE))
    return image[r, c].reshape(-1, 3).mean(axis=0)


INSIDE, OUTSIDE = (slice(18, 30), slice(24, 40)), (slice(2, 8), slice(2, 10))


def test_pairs_every_type_tried_bad_files_skipped_one_line_each(sheet):
    out, done = sheet
    report = json.loads(done.stdout)
    # tried round-robin over the sorted types: addition (broken), recolour, removal (missing), style
    assert [p["pair_id"] for p in report["pairs"]] == ["p-local", "p-global"]
    assert [s["pair_id"] for s in report["skipped"]] == ["p-broken", "p-missing"]
    warnings = done.stderr.strip().splitlines()
    assert len(warnings) == 2 and all(w.startswith("warning: pair ") for w in warnings)
    assert "p-missing" in warnings[1] and "edits/missing.mp4" in warnings[1] and "does not exist" in warnings[1]
    assert report["video"] == str(out.with_suffix(".mp4"))


def test_png_panels_show_source_target_and_mask(sheet):
    out, _ = sheet
    image = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    assert image.shape == (HEADER_HEIGHT + 2 * ROW_H, 3 * PANEL_W, 3)
    local, glob = HEADER_HEIGHT, HEADER_HEIGHT + ROW_H
    shown = source_colour(9)  # the middle of the frames where the mask is not empty
    assert np.allclose(mean_rgb(image, local, 0, *OUTSIDE), shown, atol=6)
    assert np.allclose(mean_rgb(image, local, PANEL_W, *INSIDE), RED, atol=8)
    assert np.allclose(mean_rgb(image, local, PANEL_W, *OUTSIDE), shown, atol=6)
    inside, outside = mean_rgb(image, local, 2 * PANEL_W, *INSIDE), mean_rgb(image, local, 2 * PANEL_W, *OUTSIDE)
    assert inside[0] > 180 and outside[0] < 0.5 * shown[0]  # tinted where the mask is, dimmed elsewhere
    assert np.allclose(mean_rgb(image, glob, PANEL_W, *INSIDE), YELLOW, atol=6)
    assert np.allclose(mean_rgb(image, glob, 0, *INSIDE), source_colour(T // 2), atol=6)  # no mask: the clip's middle
    assert mean_rgb(image, glob, 2 * PANEL_W, *OUTSIDE).max() < 0.5 * max(source_colour(T // 2))
    caption = image[local + PANEL_H: local + ROW_H]
    assert (caption > 200).any(axis=2).sum() > 100  # text drawn in the caption strip


def test_mp4_plays_each_pair_with_three_panels(sheet):
    out, _ = sheet
    with av.open(str(out.with_suffix(".mp4"))) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 2 * T  # two pairs of 12 frames at 24 fps, under the 2 s cap
    assert frames[0].shape == (HEADER_HEIGHT + ROW_H, 3 * PANEL_W, 3)
    for t in (0, 5, 11):  # the local pair's source panel steps through its frames
        assert np.allclose(mean_rgb(frames[t], HEADER_HEIGHT, 0, *OUTSIDE), source_colour(t), atol=8)
    assert mean_rgb(frames[3], HEADER_HEIGHT, 2 * PANEL_W, *INSIDE)[0] < 100  # mask empty before frame 6
    assert mean_rgb(frames[8], HEADER_HEIGHT, 2 * PANEL_W, *INSIDE)[0] > 180
    assert np.allclose(mean_rgb(frames[T + 4], HEADER_HEIGHT, PANEL_W, *INSIDE), YELLOW, atol=8)


def test_n_limits_pairs_and_empty_table_is_a_clear_error(pairs_root, tmp_path):
    one = run_json("sample", pairs_root, "--pairs", "-n", "1", "--seconds", "0.25", "--out", tmp_path / "one.png")
    assert [p["pair_id"] for p in one["pairs"]] == ["p-local"] and one["video_frames"] == 6
    ManifestWriter(tmp_path / "empty", "edit_pairs").write("u0", [])
    done = run_cli("sample", tmp_path / "empty", "--pairs", "--out", tmp_path / "e.png")
    assert_one_line_error(done, 2, "no edit_pairs rows")
    assert not (tmp_path / "e.png").exists() and not (tmp_path / "e.mp4").exists()


def test_preview_indices_resample_to_preview_rate_around_the_middle():
    assert preview_indices(12, 24.0, 9, 2.0) == list(range(12))
    assert preview_indices(100, 24.0, 50, 0.5) == list(range(44, 56))
    assert preview_indices(100, 48.0, 99, 0.5) == list(range(76, 100, 2))  # 48 fps at 24: every other frame
    assert preview_indices(100, 12.0, 0, 1.0) == [k // 2 for k in range(24)]  # 12 fps at 24: each frame twice
