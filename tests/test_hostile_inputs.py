"""Hostile inputs, generated here, through `python -m jobs.curate` on a local Ray from a plain environment.

Each case must end as exactly one outcome: a `videos` row (ok or rejected with its reason) or an `errors`
row; the job must finish, its manifests must validate, and nothing may be written outside the output root
(the input tree is unchanged, no file named by a `$(...)` name appears). The test prints each case and its
outcome as a table (`pytest -s` shows it).
"""

from __future__ import annotations

import struct
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import yaml
from _job_helpers import REPO, job_command, plain_env

from curation.corpus.build import write_bad_inputs
from manifests import read_table, validate_dataset

NAMED = ["with space.mp4", "quote'\"s.mp4", "$(touch PWNED).mp4", "-leading-dash.mp4", "ünïcødé_视频.mp4"]
# case -> the outcome it must have: "ok", "rejected", or an errors row's error class (a set: any one of them)
EXPECTED: dict[str, str | set[str]] = {
    "corrupt_middle.mp4": {"ok", "rejected", "VideoError"},  # decoders may skip or refuse the damaged frames
    "truncated.mp4": "VideoError", "empty.mp4": "VideoError", "text.mp4": "VideoError",
    "image_png.mp4": "VideoError", "huge_7680x4320.mp4": "rejected", "garbage.mp4": "VideoError",
    "audio_only.mp4": "VideoError", "one_by_one.mp4": "rejected", "odd_161x91.mp4": "ok",
    "rotated_90.mp4": "ok", "variable_rate.mp4": "ok", ".mp4": "InputError", "folder.mp4": "InputError",
    "dangling.mp4": "InputError", "link_out.mp4": "InputError", "zz_link_in.mp4": "DuplicateInput",
    **{name: "ok" for name in NAMED},
}


def encode(path: Path, width: int, height: int, seed: int, frames: int = 30, pts: list[int] | None = None) -> None:
    """A small H.264 clip of smooth moving noise; yuv444p so any size (odd, 1x1) encodes."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (height + frames, width + frames, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p"
        if pts is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(base[i:i + height, i:i + width]), format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def rotate_90(path: Path) -> None:
    """Set the track header's display matrix to a 90 degree rotation (what phones write)."""
    data = bytearray(path.read_bytes())
    identity = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    at = data.index(identity, data.index(b"tkhd"))
    data[at:at + 36] = struct.pack(">9I", 0, 0x10000, 0, 0xFFFF0000, 0, 0, 0, 0, 0x40000000)
    path.write_bytes(bytes(data))


def audio_only(path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for i in range(20):
            frame.pts = i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    inputs, outside = root / "inputs", root / "outside"
    inputs.mkdir()
    outside.mkdir()
    valid = outside / "valid.mp4"
    encode(valid, 160, 96, seed=99)
    write_bad_inputs(inputs, valid)  # truncated, empty, text, png, 8K header
    (inputs / "garbage.mp4").write_bytes(np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    audio_only(inputs / "audio_only.mp4")
    encode(inputs / "one_by_one.mp4", 1, 1, seed=2)
    encode(inputs / "odd_161x91.mp4", 161, 91, seed=3)
    encode(inputs / "corrupt_middle.mp4", 160, 96, seed=6, frames=60)
    damaged = bytearray((inputs / "corrupt_middle.mp4").read_bytes())
    third = len(damaged) // 3
    damaged[third:2 * third] = np.random.default_rng(6).integers(0, 256, third, dtype=np.uint8).tobytes()
    (inputs / "corrupt_middle.mp4").write_bytes(bytes(damaged))
    encode(inputs / "rotated_90.mp4", 160, 96, seed=4)
    rotate_90(inputs / "rotated_90.mp4")
    jitter = np.cumsum(np.random.default_rng(5).integers(10, 90, 30))
    encode(inputs / "variable_rate.mp4", 160, 96, seed=5, pts=[int(t) for t in jitter])
    for i, name in enumerate(NAMED):
        encode(inputs / name, 160, 96, seed=10 + i)
    (inputs / ".mp4").mkdir()
    (inputs / "folder.mp4").mkdir()
    (inputs / "dangling.mp4").symlink_to(root / "nowhere.mp4")
    (inputs / "link_out.mp4").symlink_to(valid)
    (inputs / "zz_link_in.mp4").symlink_to(inputs / "odd_161x91.mp4")
    return root


def _tree(root: Path) -> list[tuple[str, int]]:
    return sorted((p.relative_to(root).as_posix(), p.lstat().st_size) for p in root.rglob("*"))


def _outcomes(out: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for v in read_table(out, "videos").to_pylist():
        found.setdefault(Path(v["uri"]).name, []).append(v["status"])
    for e in read_table(out, "errors").to_pylist():
        if e["stage"] == "ingest":
            found.setdefault(Path(e["input"]).name, []).append(e["error_class"])
    return found


def test_every_hostile_input_ends_as_one_row_and_nothing_escapes_the_output(hostile):
    inputs, out = hostile / "inputs", hostile / "out"
    config = yaml.safe_load((REPO / "jobs/configs/curate_small.yaml").read_text())
    config.update(input=str(inputs), output=str(out), batch_size=6)
    (hostile / "job.yaml").write_text(yaml.safe_dump(config))
    before = _tree(inputs)
    proc = subprocess.run(job_command("--config", str(hostile / "job.yaml"), "--no-summary"), cwd=hostile,
                          env=plain_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    outcomes = _outcomes(out)
    print(f"\n{'case':<24} outcome")
    for case in sorted(EXPECTED):
        print(f"{case:<24} {', '.join(outcomes.get(case, ['(none)']))}")
    for case, want in EXPECTED.items():
        got = outcomes.get(case, [])
        assert len(got) == 1 and got[0] in (want if isinstance(want, set) else {want}), (case, got)
    assert validate_dataset(out) == []
    videos = {Path(v["uri"]).name: v for v in read_table(out, "videos").to_pylist()}
    assert (videos["rotated_90.mp4"]["width"], videos["rotated_90.mp4"]["height"]) == (96, 160)  # upright
    assert videos["variable_rate.mp4"]["vfr"] and not videos["odd_161x91.mp4"]["vfr"]
    assert _tree(inputs) == before  # nothing written into the inputs
    assert not list(hostile.rglob("PWNED")) and not (REPO / "PWNED").exists()
    errors = read_table(out, "errors").to_pylist()
    assert all(e["message"] and "\n" not in e["message"] for e in errors)
    clips = read_table(out, "clips").to_pylist()
    named = {v["video_id"] for v in read_table(out, "videos").to_pylist() if Path(v["uri"]).name in NAMED}
    assert named <= {c["video_id"] for c in clips}  # odd names still make clips
    assert all((out / c["uri"]).resolve().is_relative_to(out.resolve()) for c in clips if c["uri"])
