"""`python -m jobs.curate` as a user runs it: bad config/input/output, and resume after SIGKILL of the driver.

The resume test kills the job (Ray driver) with SIGKILL as soon as its first unit is committed,
re-runs it with --resume, and compares the result with an uninterrupted run: the same rows in every
table (sorted by key), no duplicate keys, every clip file present and no temp file left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from curation.corpus import build_corpus
from manifests import PRIMARY_KEYS, read_table
from manifests.units import complete_units

REPO = Path(__file__).resolve().parents[1]
TABLES = ("videos", "clips", "scores", "errors")


def _write_config(tmp_path: Path, inputs: Path, output: Path, **changes) -> Path:
    data = yaml.safe_load((REPO / "jobs/configs/curate_small.yaml").read_text())
    data.update({"input": str(inputs), "output": str(output), "batch_size": 1, "num_cpus": 2, **changes})
    path = tmp_path / f"curate-{output.name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _job(*args: str) -> list[str]:
    return [sys.executable, "-m", "jobs.curate", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(_job(*args), cwd=REPO, env=_env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    build_corpus(root, seed=1, quick=True, videos=5)
    return root / "synthetic"


def test_bad_config_missing_input_and_existing_output_are_one_line_errors(tmp_path, corpus):
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: x\noutput: y\nbatch_sise: 2\n")
    missing = _write_config(tmp_path, tmp_path / "nowhere", tmp_path / "out1")
    existing = tmp_path / "out2"
    (existing / "manifests").mkdir(parents=True)
    cases = [
        (["--config", str(bad)], "batch_sise"),
        (["--config", str(tmp_path / "absent.yaml")], "cannot read config"),
        (["--config", str(missing)], "is not a directory"),
        (["--config", str(_write_config(tmp_path, corpus, existing)), "--in-process"], "--resume"),
    ]
    for args, needle in cases:
        proc = _run(*args, timeout=120)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert lines[-1].startswith("error: ") and needle in lines[-1], proc.stderr
        assert "Traceback" not in proc.stderr


def _rows(root: Path, table: str) -> list[dict]:
    key = PRIMARY_KEYS[table]
    return sorted(read_table(root, table).to_pylist(), key=lambda r: tuple(r[k] for k in key))


def _complete_units(out: Path) -> list[str]:
    return sorted(complete_units(out)[1])


def _wait_for_commit(out: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (out / "manifests" / "_units" / "_delta_log").is_dir() and _complete_units(out):
            return
        if proc.poll() is not None:
            pytest.fail(f"job ended before the first commit: {proc.stderr.read()}")
        time.sleep(0.05)
    pytest.fail("no unit committed in time")


def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path, corpus):
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    cfg_killed, cfg_whole = _write_config(tmp_path, corpus, killed), _write_config(tmp_path, corpus, whole)

    proc = subprocess.Popen(_job("--config", str(cfg_killed), "--no-summary"), cwd=REPO, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for_commit(killed, proc)
    ray_children = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    committed = _complete_units(killed)
    assert 1 <= len(committed) < 5, "the kill must land mid-run"

    resumed = _run("--config", str(cfg_killed), "--resume", "--no-summary")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(committed)} already committed" in resumed.stderr
    assert _run("--config", str(cfg_whole), "--in-process", "--no-summary").returncode == 0

    for table in TABLES:
        got, want = _rows(killed, table), _rows(whole, table)
        keys = [tuple(r[k] for k in PRIMARY_KEYS[table]) for r in got]
        assert len(keys) == len(set(keys)), f"duplicates in {table}"
        assert got == want, f"{table} differs after resume"
    clips = _rows(killed, "clips")
    assert clips and all((killed / c["uri"]).is_file() for c in clips)
    on_disk = sorted(p.relative_to(killed).as_posix() for p in (killed / "clips").rglob("*") if p.is_file())
    assert on_disk == sorted(c["uri"] for c in clips), "stray or temp clip files after resume"
    # Ray's processes of the killed driver end too (raylet and workers at once, its agents within ~a minute)
    _, alive = psutil.wait_procs(ray_children, timeout=120)
    assert alive == [], f"Ray processes outlived the killed driver: {[p.name() for p in alive]}"


def test_main_command_prints_the_manifest_summary(tmp_path, corpus):
    out = tmp_path / "summary"
    proc = _run("--config", str(_write_config(tmp_path, corpus, out, batch_size=3)), "--in-process")
    assert proc.returncode == 0, proc.stderr
    for table in TABLES:
        assert table in proc.stdout
