"""Media files that rows point to are fsync'ed, with their folders, before the rows can commit."""

from __future__ import annotations

import os

import numpy as np

from curation.video import VideoWriter


def test_clip_file_and_its_folders_are_fsynced_before_it_appears(tmp_path, monkeypatch):
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:  # the OS boundary: record which path each fsync reached
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    path = tmp_path / "clips/v0/v0-0000000-0000008.mp4"
    with VideoWriter(path, fps=24) as writer:
        for _ in range(8):
            writer.write(np.zeros((36, 64, 3), np.uint8))
    assert path.is_file()
    temp = str(path.with_name(f".{path.name}.tmp.mp4"))
    assert synced[:3] == [temp, str(path.parent), str(path.parent.parent)]
