"""`python -m jobs.curate` as a user runs it, from an environment with none of Ray's variables set.

Bad config/input/output are one-line errors. The job listens only on loopback and its console shows only
its own lines. Resume: the job's fault hook (LIVEDITOR_FAULTS, curation/faults.py) SIGKILLs the driver
right after its N-th Delta commit (one per table of a unit, then its completion record), so the kill lands
at the same point every run, between two tables of one unit too; the resumed output must equal an uninterrupted
run: the same rows in every table (sorted by key), no duplicate keys, valid manifests, every clip file present and
no temp file left behind.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from _job_helpers import REPO, is_loopback, job_command, plain_env, sockets_of, sorted_rows, write_job_config

from curation.corpus import build_corpus
from manifests import PRIMARY_KEYS, ManifestWriter, is_unit_complete, validate_dataset

TABLES = ("videos", "clips", "scores", "errors")



def _run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(job_command(*args), cwd=REPO, env=plain_env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    build_corpus(root, seed=1, quick=True, videos=5)
    return root / "synthetic"


def test_bad_config_missing_input_and_existing_output_are_one_line_errors(tmp_path, corpus):
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: x\noutput: y\nbatch_sise: 2\n")
    missing = write_job_config(tmp_path, tmp_path / "nowhere", tmp_path / "out1")
    existing = tmp_path / "out2"
    (existing / "manifests").mkdir(parents=True)
    cases = [
        (["--config", str(bad)], "batch_sise"),
        (["--config", str(tmp_path / "absent.yaml")], "cannot read config"),
        (["--config", str(missing)], "is not a directory"),
        (["--config", str(write_job_config(tmp_path, corpus, existing)), "--in-process"], "--resume"),
    ]
    for args, needle in cases:
        proc = _run(*args, timeout=120)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert lines[-1].startswith("error: ") and needle in lines[-1], proc.stderr
        assert "Traceback" not in proc.stderr


def _commits(out: Path, units: int) -> int:
    """Delta commits the job made: one per table of a unit, then the unit's completion record."""
    ids = [f"b{i:06d}" for i in range(units)]
    return (sum(ManifestWriter(out, t).is_committed(u) for t in TABLES for u in ids)
            + sum(is_unit_complete(out, u, TABLES) for u in ids))


@pytest.fixture(scope="module")
def whole(corpus, tmp_path_factory) -> Path:
    """The uninterrupted run every killed-then-resumed run must equal."""
    tmp = tmp_path_factory.mktemp("whole")
    out = tmp / "out"
    assert _run("--config", str(write_job_config(tmp, corpus, out)), "--in-process", "--no-summary").returncode == 0
    return out


def test_job_from_a_plain_shell_listens_only_on_loopback_and_prints_only_its_own_lines(tmp_path, corpus):
    """The job paused (by its fault hook) after its first commit, with Ray and the stage actors up."""
    out, release = tmp_path / "out", tmp_path / "release"
    env = plain_env(LIVEDITOR_FAULTS=f"pause_after_commits=1,pause_file={release}")
    with (tmp_path / "stderr.txt").open("w") as stderr:
        proc = subprocess.Popen(job_command("--config", str(write_job_config(tmp_path, corpus, out)), "--no-summary"),
                                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 300
        while not Path(f"{release}.paused").exists():
            assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
            assert time.monotonic() < deadline, "the job never reached its first commit"
            time.sleep(0.1)
        tree = psutil.Process(proc.pid)
        listening, remote = sockets_of({tree.pid} | {p.pid for p in tree.children(recursive=True)})
        assert len(listening) >= 3, listening  # gcs, raylet, workers: the check below is not vacuous
        assert all(is_loopback(ip) for ip, _ in listening), listening
        assert remote == []
        release.touch()
        assert proc.wait(timeout=600) == 0, (tmp_path / "stderr.txt").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [line for line in (tmp_path / "stderr.txt").read_text().splitlines() if line.strip()]
    assert lines and all(line.startswith("curate: ") for line in lines), lines
    assert (out / "logs" / "ray" / "driver.log").is_file()


@pytest.mark.parametrize(("kill_after", "resume_mode"), [(1, "ray"), (5, "in-process"), (7, "in-process")])
def test_sigkill_at_a_commit_then_resume_equals_an_uninterrupted_run(tmp_path, corpus, whole, kill_after, resume_mode):
    """Kill points: between two tables of the first unit, right after a whole unit, inside the second unit."""
    killed = tmp_path / "killed"
    cfg = write_job_config(tmp_path, corpus, killed)
    proc = subprocess.Popen(job_command("--config", str(cfg), "--no-summary"), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            env=plain_env(LIVEDITOR_FAULTS=f"kill_after_commits={kill_after}"))
    ray_children: list[psutil.Process] = []
    while proc.poll() is None and not ray_children:
        try:
            ray_children = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == -signal.SIGKILL, stderr
    assert _commits(killed, 5) == kill_after  # the kill landed exactly there

    resume = ["--config", str(cfg), "--resume", "--no-summary"] + (["--in-process"] if resume_mode == "in-process" else [])
    resumed = subprocess.run(job_command(*resume), cwd=REPO, env=plain_env(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{kill_after // (len(TABLES) + 1)} already committed" in resumed.stderr

    for table in TABLES:
        got, want = sorted_rows(killed, table), sorted_rows(whole, table)
        keys = [tuple(r[k] for k in PRIMARY_KEYS[table]) for r in got]
        assert len(keys) == len(set(keys)), f"duplicates in {table}"
        assert got == want, f"{table} differs after resume"
    assert validate_dataset(killed) == []
    clips = sorted_rows(killed, "clips")
    assert clips and all((killed / c["uri"]).is_file() for c in clips)
    on_disk = sorted(p.relative_to(killed).as_posix() for p in (killed / "clips").rglob("*") if p.is_file())
    assert on_disk == sorted(c["uri"] for c in clips), "stray or temp clip files after resume"
    if resume_mode == "ray":  # Ray's processes of the killed driver end too (raylet and workers at once,
        _, alive = psutil.wait_procs(ray_children, timeout=120)  # its agents within about a minute)
        assert alive == [], f"Ray processes outlived the killed driver: {[p.name() for p in alive]}"


def test_main_command_prints_the_manifest_summary(tmp_path, corpus):
    out = tmp_path / "summary"
    proc = _run("--config", str(write_job_config(tmp_path, corpus, out, batch_size=3)), "--in-process")
    assert proc.returncode == 0, proc.stderr
    for table in TABLES:
        assert table in proc.stdout
