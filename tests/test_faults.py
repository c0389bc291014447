"""Fault injection (LIVEDITOR_FAULTS, curation/faults.py): each fault ends with valid manifests, and a resume
completes the run so that it equals an undisturbed one.

Faults: a stage raising on one input (an `errors` row), a stage actor that crashes in every stage, an input
deleted between planning and processing, the output disk filling up (a file size limit on the job), and
a read-only output root (one line at start). The driver SIGKILLs are in test_jobs_curate.py.
"""

from __future__ import annotations

import os
import resource
import subprocess
import time
from pathlib import Path

import pytest
from _job_helpers import REPO, job_command, plain_env, sorted_rows, write_job_config

from curation.corpus import build_corpus
from manifests import read_table, validate_dataset

TABLES = ("videos", "clips", "scores", "errors")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    build_corpus(root, seed=4, quick=True, videos=4)
    inputs = root / "synthetic"
    return inputs



def _job(config: Path, *args: str, faults: str = "", preexec=None, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(job_command("--config", str(config), "--no-summary", *args), cwd=REPO,
                          env=plain_env(LIVEDITOR_FAULTS=faults), capture_output=True, text=True, timeout=timeout,
                          preexec_fn=preexec)


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    return lines[-1]


@pytest.fixture(scope="module")
def whole(corpus, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("whole")
    out = tmp / "out"
    proc = _job(write_job_config(tmp, corpus, out), "--in-process")
    assert proc.returncode == 0, proc.stderr
    return out


def _equals_whole(out: Path, whole: Path) -> None:
    assert validate_dataset(out) == []
    for table in TABLES:
        assert sorted_rows(out, table) == sorted_rows(whole, table), f"{table} differs from the undisturbed run"


def test_a_stage_raising_on_one_input_is_an_errors_row_in_every_stage(corpus, whole, tmp_path):
    videos = sorted(p.name for p in corpus.glob("*.mp4"))
    name_of = {v["video_id"]: Path(v["uri"]).name for v in sorted_rows(whole, "videos")}
    clip_of = {name_of[c["video_id"]]: c["clip_id"] for c in sorted_rows(whole, "clips") if c["status"] == "ok"}
    # one input per stage, each of another video, so no fault hides another
    faults = {"ingest": videos[0], "shots": videos[1], "extract": clip_of[videos[2]], "signals": clip_of[videos[3]]}
    out = tmp_path / "out"
    proc = _job(write_job_config(tmp_path, corpus, out), "--in-process",
                faults="raise_in=" + "+".join(f"{stage}:{text}" for stage, text in faults.items()))
    assert proc.returncode == 0, proc.stderr
    errors = {(e["stage"], e["error_class"]): e["input"] for e in read_table(out, "errors").to_pylist()}
    for stage, text in faults.items():
        assert text in errors[(stage, "InjectedFault")]
    assert validate_dataset(out) == []
    assert len(sorted_rows(out, "videos")) == len(sorted_rows(whole, "videos")) - 1  # only the failed input is missing


def test_a_crashing_actor_in_every_stage_then_resume_equals_an_undisturbed_run(corpus, whole, tmp_path):
    out = tmp_path / "out"
    config = write_job_config(tmp_path, corpus, out)
    proc = _job(config, faults="crash_in=ingest+shots+extract+signals")
    if proc.returncode != 0:  # Ray Data restarted the actors and retried; otherwise the job failed cleanly
        _one_line_error(proc)
    assert validate_dataset(out) == []
    assert sorted(p.name for p in (out / "logs" / "faults").iterdir()) == [
        "crashed-extract", "crashed-ingest", "crashed-shots", "crashed-signals"]
    assert _job(config, "--resume").returncode == 0
    _equals_whole(out, whole)


def test_an_input_deleted_between_planning_and_processing_is_an_errors_row(corpus, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for src in corpus.glob("*.mp4"):
        os.link(src, inputs / src.name)
    last = sorted(inputs.glob("*.mp4"))[-1]
    out, release = tmp_path / "out", tmp_path / "release"
    config = write_job_config(tmp_path, inputs, out)
    proc = subprocess.Popen(job_command("--config", str(config), "--no-summary", "--in-process"), cwd=REPO,
                            env=plain_env(LIVEDITOR_FAULTS=f"pause_after_commits=1,pause_file={release}"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while not Path(f"{release}.paused").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.1)
    last.unlink()
    release.touch()
    _, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 0, stderr
    errors = [e for e in read_table(out, "errors").to_pylist() if e["input"] == str(last)]
    assert len(errors) == 1 and "no such file" in errors[0]["message"]
    assert validate_dataset(out) == []
    resumed = _job(config, "--resume", "--in-process")  # the saved plan: nothing left to do, nothing refused
    assert resumed.returncode == 0 and "4 already committed, 0 to run" in resumed.stderr, resumed.stderr


def _file_size_limit(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # Python ignores SIGXFSZ: writes get EFBIG
    return apply


def test_a_full_disk_fails_the_run_in_one_line_and_a_resume_completes_it(corpus, whole, tmp_path):
    out = tmp_path / "out"
    config = write_job_config(tmp_path, corpus, out)
    full = _job(config, "--in-process", preexec=_file_size_limit(16 << 10))
    assert full.returncode != 0
    assert "File too large" in _one_line_error(full)
    if (out / "manifests").exists():  # whatever committed before the disk filled is whole and valid
        assert validate_dataset(out) == []
    assert _job(config, "--in-process", "--resume").returncode == 0
    _equals_whole(out, whole)


def test_a_read_only_output_root_is_one_line_at_start(corpus, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["chattr", "+i", str(out)], check=True)  # immutable: even root cannot create files there
    try:
        proc = _job(write_job_config(tmp_path, corpus, out), "--in-process", timeout=120)
    finally:
        subprocess.run(["chattr", "-i", str(out)], check=True)
    assert proc.returncode == 2
    assert f"output {out} is not writable" in _one_line_error(proc)
    assert list(out.iterdir()) == []
