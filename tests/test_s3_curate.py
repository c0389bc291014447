"""`python -m jobs.curate --output s3://...` against a real S3 API server on 127.0.0.1 (moto, started by the
test): the same rows as a local run, every file a row names uploaded before its rows commit, staging
cleaned up, and a SIGKILLed run (through Ray) resumed to the same result."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from _job_helpers import REPO, job_command, plain_env, sorted_rows, write_job_config
from _s3_helpers import closed_port, s3_server  # noqa: F401 - the `s3` fixture

from curation.corpus import build_corpus
from curation.publish import publisher
from curation.stage import WorkUnit
from curation.units import PipelineError
from manifests import validate_dataset
from manifests.storage import location

TABLES = ("videos", "clips", "scores", "errors")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    build_corpus(root, seed=1, quick=True, videos=3)
    return root / "synthetic"


@pytest.fixture(scope="module")
def whole(tmp_path_factory, corpus) -> Path:
    """An uninterrupted local run: what every s3 run must equal."""
    tmp = tmp_path_factory.mktemp("whole")
    out = tmp / "whole"
    done = _job(write_job_config(tmp, corpus, out), "--in-process", env=plain_env())
    assert done.returncode == 0, done.stderr
    return out


def _job(cfg: Path, *args: str, env: dict[str, str], output: str | None = None) -> subprocess.CompletedProcess:
    extra = ["--output", output] if output else []
    return subprocess.run(job_command("--config", str(cfg), "--no-summary", *extra, *args), cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def _same_as(root: str, whole: Path) -> None:
    for table in TABLES:
        assert sorted_rows(root, table) == sorted_rows(whole, table), f"{table} differs"
    assert validate_dataset(root, check_files=True) == []
    clips = sorted(c["uri"] for c in sorted_rows(root, "clips") if c["uri"])
    folder = location(root + "/clips")
    listed = folder.fs.get_file_info(pafs.FileSelector(folder.key, recursive=True))
    objects = sorted(f"clips/{i.path.removeprefix(folder.key + '/')}" for i in listed if i.type == pafs.FileType.File)
    assert clips and objects == clips, "missing or stray clip objects"


def test_curate_in_process_to_s3_equals_a_local_run_and_leaves_no_staging(s3, tmp_path, corpus, whole):
    root = f"s3://{s3.bucket()}/curated"
    staging = tmp_path / "staging"
    cfg = write_job_config(tmp_path, corpus, tmp_path / "unused")
    done = _job(cfg, "--in-process", env=plain_env(LIVEDITOR_STAGING_DIR=str(staging)), output=root)
    assert done.returncode == 0, done.stderr
    _same_as(root, whole)
    assert location(root + "/curate_plan.json").is_file()
    assert list(staging.iterdir()) == []  # each unit's files removed after its commit, the run's folder at the end


def test_curate_to_s3_through_ray_killed_at_a_commit_then_resumed_equals_an_uninterrupted_run(s3, tmp_path, corpus, whole):
    root = f"s3://{s3.bucket()}/curated"
    cfg = write_job_config(tmp_path, corpus, tmp_path / "unused")
    env = plain_env(LIVEDITOR_STAGING_DIR=str(tmp_path / "staging"))
    killed = _job(cfg, env={**env, "LIVEDITOR_FAULTS": f"kill_after_commits={len(TABLES) + 2}"}, output=root)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = _job(cfg, "--resume", "--in-process", env=env, output=root)
    assert resumed.returncode == 0, resumed.stderr
    assert "1 already committed" in resumed.stderr
    _same_as(root, whole)


@pytest.mark.parametrize("case", ["missing bucket", "wrong key", "server gone"])
def test_an_unusable_s3_output_is_one_line_at_start(s3, tmp_path, corpus, case):
    bucket = s3.bucket()
    env = plain_env()
    root = f"s3://{bucket}/curated"
    if case == "missing bucket":
        root = f"s3://{bucket}-absent/curated"
    elif case == "wrong key":
        env["AWS_SECRET_ACCESS_KEY"] = s3.secret_key[::-1]
    else:
        env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{closed_port()}"
    done = _job(write_job_config(tmp_path, corpus, tmp_path / "unused"), "--in-process", env=env, output=root)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith(f"error: output {root} is not writable"), done.stderr
    assert s3.secret_key not in done.stderr and s3.secret_key[::-1] not in done.stderr


def test_curate_from_s3_input_to_s3_output_equals_a_local_run_and_empties_its_cache(s3, tmp_path, corpus, whole):
    bucket = s3.bucket()
    source = location(f"s3://{bucket}/corpus")
    pafs.copy_files(str(corpus), source.key, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=source.fs)
    (source / "zz-broken.mp4").write_bytes(b"not a video")  # one bad input: an errors row naming the object
    root = f"s3://{bucket}/curated"
    staging = tmp_path / "staging"
    cfg = write_job_config(tmp_path, corpus, tmp_path / "unused")
    done = _job(cfg, "--in-process", "--input", str(source), env=plain_env(LIVEDITOR_STAGING_DIR=str(staging)),
                output=root)
    assert done.returncode == 0, done.stderr
    for table in ("clips", "scores"):
        assert sorted_rows(root, table) == sorted_rows(whole, table), f"{table} differs"
    local_uri = {v["video_id"]: v["uri"] for v in sorted_rows(whole, "videos")}
    for video in sorted_rows(root, "videos"):  # the same rows, naming the object instead of the local file
        assert video["uri"] == str(source / Path(local_uri[video["video_id"]]).relative_to(corpus).as_posix())
    errors = sorted_rows(root, "errors")
    assert sorted(e["input"] for e in errors) == sorted(
        [str(source / "zz-broken.mp4")]
        + [str(source / Path(e["input"]).relative_to(corpus).as_posix()) for e in sorted_rows(whole, "errors")])
    broken = next(e for e in errors if e["input"].endswith("zz-broken.mp4"))
    assert broken["message"].startswith(f"{source}/zz-broken.mp4: ") and str(staging) not in broken["message"]
    assert validate_dataset(root, check_files=True) == []
    assert [p for p in staging.rglob("*") if p.is_file()] == []  # cached inputs removed after their units



def test_the_server_going_away_mid_run_is_one_line_and_the_job_stops(s3, tmp_path, corpus):
    """The job pauses after its first unit (faults: pause_after_commits), the server is stopped, the job goes on:
    the next unit's upload fails, and the job ends with one `error:` line (no traceback, no secret)."""
    root = f"s3://{s3.bucket()}/curated"
    release = tmp_path / "release"
    env = plain_env(LIVEDITOR_STAGING_DIR=str(tmp_path / "staging"),
                    LIVEDITOR_FAULTS=f"pause_after_commits={len(TABLES) + 1},pause_file={release}")
    cfg = write_job_config(tmp_path, corpus, tmp_path / "unused")
    job = subprocess.Popen(job_command("--config", str(cfg), "--no-summary", "--in-process", "--output", root), cwd=REPO,
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while not Path(f"{release}.paused").exists() and job.poll() is None:
            time.sleep(0.05)
        assert job.poll() is None, job.communicate()[1]
        s3.stop()
        release.touch()
        _, stderr = job.communicate(timeout=600)
    finally:
        if job.poll() is None:
            job.kill()
    lines = stderr.strip().splitlines()
    assert job.returncode == 1 and lines[-1].startswith("error: OSError: "), stderr
    assert "Traceback" not in stderr and s3.secret_key not in stderr
    assert "committed units are kept" in lines[-1]


def test_a_unit_is_published_only_when_every_file_its_rows_name_is_staged(s3, tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEDITOR_STAGING_DIR", str(tmp_path / "staging"))
    root = f"s3://{s3.bucket()}/out"
    rows = {"clips": [{"uri": "clips/v/v-1.mp4"}, {"uri": "clips/v/v-2.mp4"}], "videos": [{"uri": "/inputs/v.mp4"}]}
    with publisher(root) as out:
        unit = WorkUnit("b000000", [], out.work_root, tables=rows)
        staged = Path(out.work_root) / "clips/v"
        staged.mkdir(parents=True)
        (staged / "v-1.mp4").write_bytes(b"one")
        with pytest.raises(PipelineError, match="v-2.mp4, named by its rows, is neither in the staging folder"):
            out.publish(unit)
        (staged / "v-2.mp4").write_bytes(b"two")
        out.publish(unit)
        out.release(unit)
        assert sorted(p.name for p in staged.iterdir()) == []
    assert location(root + "/clips/v/v-2.mp4").read_bytes() == b"two"  # inputs (videos.uri) are not uploaded
    assert not (tmp_path / "staging").exists() or list((tmp_path / "staging").iterdir()) == []
