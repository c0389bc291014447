"""manifests.media: one mask format, one atomic write, one encoder, and decoders that agree on pixels."""

from __future__ import annotations

import os
import tracemalloc

import av
import numpy as np
import pytest

from manifests import ManifestError
from manifests.media.atomic import atomic_output, temp_path
from manifests.media.decode import frame_index, iter_frame_batches, iter_frames, read_frames, read_preview_run
from manifests.media.encode import VideoWriter
from manifests.media.masks import open_mask_file, write_mask_file
from manifests.media.probe import VideoError, probe

T, H, W = 12, 48, 80


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """12 frames of noise: any decoder that differs by one level in one pixel shows."""
    path = tmp_path_factory.mktemp("media") / "noise.mp4"
    rng = np.random.default_rng(0)
    with VideoWriter(path, fps=24) as writer:
        for _ in range(T):
            writer.write(rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
    return path


def test_mask_file_reads_what_the_editors_write_and_refuses_other_files(tmp_path):
    rng = np.random.default_rng(0)
    mask = rng.random((5, 9, 7)) > 0.6
    mask[2] = False
    mask_file = open_mask_file(write_mask_file(tmp_path / "m.npz", mask))
    assert mask_file.shape == (5, 9, 7) and mask_file.frames == [0, 1, 3, 4]
    assert all(np.array_equal(mask_file.frame(t), mask[t]) for t in range(5))
    assert np.array_equal(mask_file.dense(), mask)
    np.save(tmp_path / "dense.npy", mask)
    (tmp_path / "zip.npz").write_bytes(b"PK\x03\x04 cut short")
    for name, text in (("dense.npy", "bare .npy array"), ("zip.npz", "not a mask file"),
                       ("missing.npz", "no such mask file")):
        with pytest.raises(ManifestError, match=text):
            open_mask_file(tmp_path / name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dense.npy", "m.npz", "zip.npz"]  # no temp file left


@pytest.fixture
def synced(monkeypatch) -> list[str]:
    """The paths fsync'ed during the test, in order."""
    paths: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:  # the OS boundary: record which path each fsync reached
        paths.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    return paths


def test_atomic_output_appears_durably_or_not_at_all(tmp_path, synced):
    path = tmp_path / "new" / "sheet.png"
    with atomic_output(path) as temp:
        assert temp.parent == path.parent and temp.name.startswith(".") and temp.suffix == ".png"
        temp.write_bytes(b"whole")
        assert not path.exists()
    assert path.read_bytes() == b"whole"
    assert synced == [str(temp), str(path.parent), str(path.parent.parent)]
    with pytest.raises(RuntimeError, match="crash"):
        with atomic_output(path) as temp:
            temp.write_bytes(b"half")
            raise RuntimeError("crash mid-write")
    assert path.read_bytes() == b"whole" and [p.name for p in path.parent.iterdir()] == ["sheet.png"]


def test_clip_file_and_its_folders_are_fsynced_before_it_appears(tmp_path, synced):
    """Media files that rows point to are fsync'ed, with their folders, before the rows can commit."""
    path = tmp_path / "clips/v0/v0-0000000-0000008.mp4"
    with VideoWriter(path, fps=24) as writer:
        for _ in range(8):
            writer.write(np.zeros((36, 64, 3), np.uint8))
    assert path.is_file()
    temp = str(temp_path(path))
    assert synced[:3] == [temp, str(path.parent), str(path.parent.parent)]


def test_decoded_pixels_equal_decords_at_full_size_and_scaled(clip):
    """decord decoded every frame before the switch to PyAV's streaming reads: the values computed from
    frames stay the same only if the pixels do, at full size and through the decoder-side resize."""
    import decord

    for size in (None, (40, 22), (64, 36)):
        kwargs = {} if size is None else {"width": size[0], "height": size[1]}
        reader = decord.VideoReader(str(clip), ctx=decord.cpu(0), **kwargs)
        for idx in ([0, 1, 2], [7, 2, 7], list(range(T))):
            expected = reader.get_batch(idx).asnumpy()
            assert np.array_equal(read_frames(clip, idx, *(size or (None, None))), expected), (size, idx)


def test_preview_run_is_read_frames_of_the_run_and_stops_at_the_video_end(clip):
    assert np.array_equal(read_preview_run(clip, 3, 4, (40, 22)), read_frames(clip, range(3, 7), 40, 22))
    assert np.array_equal(read_preview_run(clip, 10, 8, (40, 22)), read_frames(clip, [10, 11], 40, 22))  # 2 of 8 left
    with pytest.raises(VideoError, match="no decodable frames from frame 12"):
        read_preview_run(clip, T, 3, (40, 22))


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    """1,200 frames with a keyframe every 40: long enough that a read holding the video would show."""
    path = tmp_path_factory.mktemp("media") / "long.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": "40", "keyint_min": "40", "bf": "2"}
        for t in range(1200):
            frame = np.full((48, 64, 3), (t * 7) % 256, np.uint8)
            frame[:, (t % 64)] = 255 - frame[0, 0]  # a moving bar: frames differ
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_sparse_reads_seek_and_equal_a_full_decode(long_video):
    everything = np.stack([rgb for _, rgb in iter_frames(long_video)])  # (1200, 48, 64, 3)
    assert len(everything) == len(frame_index(long_video)) == 1200
    for idx in ([1199], [0, 41, 40, 39], [5, 700, 701, 1150], list(range(380, 460, 3))):
        assert np.array_equal(read_frames(long_video, idx), everything[idx]), idx
    starts = [first for first, _ in iter_frame_batches(long_video, 16, step=5, start=90, end=400)]
    assert starts == list(range(90, 400, 80))
    with pytest.raises(VideoError, match="frame 1200 is outside the video's 1200 frames"):
        read_frames(long_video, [3, 1200])


def test_streaming_a_long_video_holds_only_a_batch(long_video):
    """Memory per read is bounded by the batch, not the video: the arrays alive at the peak are a batch or
    two (1,200 frames of 9 KB would be 11 MB)."""
    tracemalloc.start()
    try:
        frames = sum(len(batch) for _, batch in iter_frame_batches(long_video, 8))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert frames == 1200
    assert peak < 1_000_000, peak


def test_writer_counts_its_frames_and_leaves_no_file_without_one(clip, tmp_path):
    frames = read_frames(clip)
    with VideoWriter(tmp_path / "copy.mp4", fps=24) as writer:
        for frame in frames:
            writer.write(frame)
    assert writer.frames_written == T and probe(tmp_path / "copy.mp4").frames == T
    with VideoWriter(tmp_path / "empty.mp4", fps=24) as writer:
        pass
    assert writer.frames_written == 0 and [p.name for p in tmp_path.iterdir()] == ["copy.mp4"]


def test_non_reference_b_frames_are_told_apart_from_the_pictures_others_need(long_video):
    """Sparse reads skip packets `is_disposable` accepts, so it must accept only pictures no other references:
    B-frames here (x264 with 2 B-frames and a B-pyramid keeps one of them as a reference), never I or P."""
    from manifests.media.h264 import is_disposable, nal_length_size

    with av.open(str(long_video)) as container:
        stream = container.streams.video[0]
        size = nal_length_size(stream.codec_context.extradata)
        kinds = {}
        for packet in container.demux(stream):
            if packet.size:
                kinds[packet.pts] = is_disposable(memoryview(packet), size)
        disposable = sum(kinds.values())
    assert 0 < disposable < len(kinds) / 2
    with av.open(str(long_video)) as container:
        for frame in container.decode(video=0):
            if frame.pict_type in (av.video.frame.PictureType.I, av.video.frame.PictureType.P):
                assert not kinds[frame.pts], frame.pts
