"""shots.keyframe_snap_s: clips of H.264 sources moved onto IDR pictures so extraction stream-copies them.

A clip may lose a fraction of a second at each end, never gain a frame of another shot, and its frames are the
source's own (bit-exact: no decode, no encode).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from curation.extract import PacketIndex, copy_span, index_packets, keyframe_aligned
from curation.stage import WorkUnit
from curation.stages import ExtractStage, ShotsStage
from curation.stages.extract import ExtractConfig
from curation.stages.shots import ShotsConfig, split_at_keyframes
from manifests.media.decode import read_frames
from manifests.media.probe import probe

FPS, W, H = 25, 96, 64
SHOTS = (50, 45, 100)  # frames per shot; the last is longer than max_clip_s (2 s) and must be split


def test_split_at_keyframes_takes_the_farthest_fitting_keyframe_or_equal_parts():
    assert split_at_keyframes(0, 100, [0, 30, 60, 90], 10, 50) == [(0, 30), (30, 60), (60, 100)]
    assert split_at_keyframes(0, 100, [0, 95], 10, 50) == [(0, 50), (50, 100)]  # none fits: equal parts
    assert split_at_keyframes(5, 40, [20], 10, 50) == [(5, 40)]


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """Three panning shots of different colours with B-frames, an IDR picture on each cut (as x264's scene-cut
    detection puts them) and one every 50 frames."""
    path = tmp_path_factory.mktemp("snap") / "shots.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"g": "50", "bf": "2", "sc_threshold": "0"})
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for shot, length in enumerate(SHOTS):
            coarse = rng.integers(0, 120, (H // 8, W // 4, 3)).astype(np.uint8) + np.uint8(40 + 60 * shot)
            base = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)  # (H, 2W, 3) blocks in the shot's tone
            for t in range(length):
                picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(base[:, t % W : t % W + W]), format="rgb24")
                picture.pict_type = av.video.frame.PictureType.I if t == 0 else av.video.frame.PictureType.NONE
                for packet in stream.encode(picture):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def idr_frames(index: PacketIndex) -> list[int]:
    position = index.decode_position
    assert position is not None
    return [i for i in range(len(position)) if index.idr[int(position[i])]]


def test_keyframe_aligned_starts_on_an_idr_within_the_slack_and_gives_back_trimmed_frames(source):
    index = index_packets(source)
    cuts = [sum(SHOTS[:k]) for k in range(1, len(SHOTS))]
    assert set(cuts) <= set(idr_frames(index))
    # trimmed by 2 at both ends: the IDR on the cut and the one on the next cut give the frames back
    assert keyframe_aligned(index, 2, 48, slack=5, min_frames=25, back=2, forward=2) == (0, 50)
    # no trimmed frames to give back: the next IDR is 43 frames on, past the slack
    assert keyframe_aligned(index, 52, 93, slack=5, min_frames=25) is None
    found = keyframe_aligned(index, 52, 93, slack=5, min_frames=25, back=2)
    assert found is not None and found[0] == 50 and 88 <= found[1] <= 93 and copy_span(index, *found)


def test_snapped_clips_are_the_sources_own_frames_and_stay_inside_their_shots(source, tmp_path):
    info = probe(source)
    video = {"video_id": "v", "uri": str(source), "fps": info.fps, "width": W, "height": H, "status": "ok"}
    config = ShotsConfig(min_clip_s=1.0, max_clip_s=2.0, trim_frames=2, keyframe_snap_s=0.3)
    clips = ShotsStage(config, buckets=(H,)).clip_rows(video)
    exact = ShotsStage(config.model_copy(update={"keyframe_snap_s": 0.0}), buckets=(H,)).clip_rows(video)
    shots = [(sum(SHOTS[:k]), sum(SHOTS[: k + 1])) for k in range(len(SHOTS))]
    # exact: trimmed by 2 at each cut, the long shot in two equal parts; snapped: whole shots (the encoder's
    # IDR pictures agree with the cuts) and the long shot split at its IDR picture, frame 145
    assert [(c["start_frame"], c["end_frame"]) for c in exact] == [(2, 48), (52, 93), (97, 145), (145, 193)]
    assert [(c["start_frame"], c["end_frame"]) for c in clips] == [(0, 50), (50, 95), (95, 145), (145, 195)]
    assert all(any(s <= c["start_frame"] < c["end_frame"] <= e for s, e in shots) for c in clips)
    unit = WorkUnit("u", [str(source)], str(tmp_path), tables={"videos": [video], "clips": clips})
    extracted = ExtractStage(ExtractConfig(buckets=(H,))).process(unit).rows
    assert not extracted["errors"]
    for clip in extracted["clips"]:
        frames = read_frames(tmp_path / clip["uri"])
        assert np.array_equal(frames, read_frames(source, range(clip["start_frame"], clip["end_frame"])))
