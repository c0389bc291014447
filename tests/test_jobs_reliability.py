"""The curation job against a careless operator: a resume that would mix two configs is refused, and gc run in
a loop while the job commits loses nothing (whatever moment each gc lands on)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
from _job_helpers import REPO, job_command, plain_env, sorted_rows, write_job_config

from curation.corpus import build_corpus
from curation.job_config import load_config
from curation.units import PLAN_FILE, row_settings
from manifests import validate_dataset

TABLES = ("videos", "clips", "scores", "errors")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    build_corpus(root, seed=1, quick=True, videos=3)
    return root / "synthetic"


def _job(*args: str, faults: str = "") -> subprocess.CompletedProcess:
    env = plain_env(LIVEDITOR_FAULTS=faults) if faults else plain_env()
    return subprocess.run(job_command(*args, "--in-process", "--no-summary"), cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)


def _killed_after_first_unit(tmp_path, corpus):
    """A run SIGKILLed right after its first unit's last commit (4 tables, then its completion record)."""
    out = tmp_path / "out"
    other = write_job_config(tmp_path, corpus, out, thresholds={"min_blur": 55.0}).rename(tmp_path / "other.yaml")
    cfg = write_job_config(tmp_path, corpus, out)
    killed = _job("--config", str(cfg), faults=f"kill_after_commits={len(TABLES) + 1}")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    return out, cfg, other


def _one_line_error(done: subprocess.CompletedProcess, text: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and lines[-1].startswith("error: ") and text in lines[-1], done.stderr
    assert "Traceback" not in done.stderr


def test_resume_without_the_plan_is_refused_when_units_are_committed(tmp_path, corpus):
    out, _, other = _killed_after_first_unit(tmp_path, corpus)
    (out / PLAN_FILE).unlink()
    _one_line_error(_job("--config", str(other), "--resume"), f"no {PLAN_FILE}")
    assert sorted_rows(out, "videos") and len(sorted_rows(out, "videos")) == 1  # nothing more was written


def test_resume_refuses_units_committed_under_other_settings_even_with_a_matching_plan(tmp_path, corpus):
    out, cfg, other = _killed_after_first_unit(tmp_path, corpus)
    plan = json.loads((out / PLAN_FILE).read_text())
    plan["settings"] = row_settings(load_config(other))  # a plan rewritten by hand to the other config
    (out / PLAN_FILE).write_text(json.dumps(plan))
    _one_line_error(_job("--config", str(other), "--resume"), "unit b000000")
    plan["settings"] = row_settings(load_config(cfg))
    (out / PLAN_FILE).write_text(json.dumps(plan))
    resumed = _job("--config", str(cfg), "--resume")  # the original config still resumes
    assert resumed.returncode == 0 and "1 already committed" in resumed.stderr, resumed.stderr
    assert validate_dataset(out) == []


def test_gc_in_a_loop_while_the_job_commits_loses_nothing(tmp_path, corpus):
    out = tmp_path / "out"
    cfg = write_job_config(tmp_path, corpus, out)
    job = subprocess.Popen(job_command("--config", str(cfg), "--in-process", "--no-summary"), cwd=REPO,
                           env=plain_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    gc = [sys.executable, "-m", "manifests", "gc", str(out), "--retention-hours", "0", "--allow-short-retention"]
    runs = 0
    try:
        while job.poll() is None and runs < 200:
            if (out / "manifests").is_dir():
                done = subprocess.run(gc, cwd=REPO, env=plain_env(), capture_output=True, text=True, timeout=120)
                assert done.returncode == 0, done.stderr
                runs += 1
        _, stderr = job.communicate(timeout=600)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 0, stderr
    assert validate_dataset(out, check_files=True) == []
    assert len(sorted_rows(out, "videos")) == 3
    again = _job("--config", str(cfg), "--resume")
    assert again.returncode == 0 and "3 already committed, 0 to run" in again.stderr, again.stderr


@pytest.mark.parametrize("flag,value", [("--output", "gs://bucket/ds"), ("--input", "gs://bucket/videos"),
                                        ("--output", "http://host/ds")])  # s3:// is served: tests/test_s3_curate.py
def test_a_scheme_we_cannot_honour_is_one_line_and_writes_nothing(tmp_path, corpus, flag, value):
    cfg = write_job_config(tmp_path, corpus, tmp_path / "out")
    done = subprocess.run(job_command("--config", str(cfg), flag, value, "--in-process"), cwd=tmp_path,
                          env=plain_env(), capture_output=True, text=True, timeout=300)
    _one_line_error(done, "paths are not supported")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([cfg.name])  # no `s3:` folder, no output


def test_joining_an_address_where_nothing_listens_is_one_line_at_once(tmp_path, corpus):
    """Ray's own join waits on an unreachable GCS for many minutes; the job refuses it after one connect."""
    import socket

    with socket.socket() as probe:  # a loopback port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cfg = write_job_config(tmp_path, corpus, tmp_path / "out")
    done = subprocess.run(job_command("--config", str(cfg), "--ray-address", f"127.0.0.1:{port}"), cwd=tmp_path,
                          env=plain_env(), capture_output=True, text=True, timeout=300)
    _one_line_error(done, f"could not join the Ray cluster at 127.0.0.1:{port}: nothing answers on 127.0.0.1:{port}")
