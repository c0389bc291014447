"""The model stages and the pairs stage inside `python -m jobs.curate`: switched on by their config sections,
rows with provenance (proposer rows `none`, model rows `random-init`), pairs only from objects with real
(or no) weights, refusal without weights, and a kill between the tables of a unit resumed to the rows of
an uninterrupted run (random-init weights are seeded, so reruns agree)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from _job_helpers import REPO, job_command, plain_env, sorted_rows, write_job_config

from curation.corpus import build_corpus
from manifests import PRIMARY_KEYS, read_table, validate_dataset
from manifests.rle import rle_decode

TABLES = ("videos", "clips", "objects", "object_frames", "scores", "edit_pairs", "clip_embeddings", "errors")
KEEP_ALL = ("tracker_type: bytetrack\ntrack_high_thresh: 0.0\ntrack_low_thresh: 0.0\nnew_track_thresh: 0.0\n"
            "track_buffer: 30\nmatch_thresh: 0.8\nfuse_score: True\n")


def _config(tmp_path: Path, inputs: Path, output: Path, allow_random_init: bool = True) -> Path:
    """curate_small.yaml plus CPU-sized model stages: proposer + YOLO/SAM and CLIP on tiny random-init models."""
    tracker = tmp_path / "keep_all.yaml"
    tracker.write_text(KEEP_ALL)  # random-init boxes score low: keep every one so model rows exist
    random = {"weights": "not-here.pt", "allow_random_init": allow_random_init, "download": False}
    return write_job_config(
        tmp_path, inputs, output, batch_size=2, num_cpus=3,
        resources={"ingest": {"num_cpus": 0.25}, "shots": {"num_cpus": 0.5}, "extract": {"num_cpus": 0.5},
                   "signals": {"num_cpus": 0.25}, "objects": {"num_cpus": 0.5}, "clip_scores": {"num_cpus": 0.25},
                   "pairs": {"num_cpus": 0.25}},
        objects={"methods": ["proposer", "yolo-sam"], "max_frames": 6, "short_side": 96,
                 "yolo": {"weights": random, "imgsz": 64, "conf": 0.0, "max_det": 2, "tracker": str(tracker)},
                 "sam": {"weights": random, "image_size": 64}},
        clip_scores={"clip": {"arch": "ViT-S-32", "weights": random, "image_size": 64}, "frames_per_clip": 3},
        pairs={"pairs_per_clip": 1, "max_frames": 12, "mix": {"recolour": 1.0, "style": 1.0}},
    )


def _job(config: Path, *args: str, faults: str | None = None) -> subprocess.CompletedProcess:
    env = plain_env(**({"LIVEDITOR_FAULTS": faults} if faults else {}))
    return subprocess.run(job_command("--config", str(config), "--no-summary", *args), cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    build_corpus(root, seed=3, quick=True, videos=3)
    return root / "synthetic"


@pytest.fixture(scope="module")
def whole(tmp_path_factory, corpus) -> Path:
    """An uninterrupted run through Ray."""
    tmp = tmp_path_factory.mktemp("whole")
    proc = _job(_config(tmp, corpus, tmp / "out"))
    assert proc.returncode == 0, proc.stderr
    return tmp / "out"


def test_model_stage_rows_carry_their_provenance_and_validate(whole):
    assert validate_dataset(whole) == []
    objects = sorted_rows(whole, "objects")
    by_model = {(o["model_name"], o["weights_id"]) for o in objects}
    assert ("none", "none") in by_model, "the proposer found no moving object in the corpus"
    assert ("not-here+sam-vit_b", "random-init") in by_model
    frames = read_table(whole, "object_frames").to_pylist()
    assert len(frames) == sum(len(o["frame_indices"]) for o in objects)
    first = next(f for f in frames if f["mask_rle"])
    assert rle_decode(first["mask_rle"], first["mask_height"], first["mask_width"]).shape == (
        first["mask_height"], first["mask_width"])
    ok_clips = {c["clip_id"] for c in sorted_rows(whole, "clips") if c["status"] == "ok"}
    embeddings = sorted_rows(whole, "clip_embeddings")
    assert {e["clip_id"] for e in embeddings} == ok_clips
    with np.load(whole / embeddings[0]["uri"]) as z:
        assert z[embeddings[0]["key"]].shape == (len(embeddings[0]["frame_indices"]), embeddings[0]["dim"])
    clip_scores = [s for s in sorted_rows(whole, "scores") if s["stage"] == "clip_scores"]
    assert {s["signal"] for s in clip_scores} >= {"clip_text_alignment", "clip_aesthetic"}
    assert all(s["weights_id"] == "random-init" and s["passed"] is None for s in clip_scores)
    pairs = sorted_rows(whole, "edit_pairs")
    assert pairs, "no edit pair from the corpus"
    proposer_objects = {o["object_id"] for o in objects if o["weights_id"] == "none"}
    assert {p["object_id"] for p in pairs if p["object_id"]} <= proposer_objects  # never a random-init mask
    assert {p["edit_type"] for p in pairs} <= {"recolour", "style"}
    for p in pairs:
        assert (whole / p["source_uri"]).is_file() and (whole / p["target_uri"]).is_file()
        assert p["split"] in ("train", "val", "test") and p["stage"] == "pairs" and p["frames"] > 1


def test_without_weights_or_permission_the_job_stops_at_start_in_one_line(tmp_path, corpus):
    out = tmp_path / "out"
    proc = _job(_config(tmp_path, corpus, out, allow_random_init=False), "--in-process")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no weights for") and "LIVEDITOR_WEIGHTS_DIR" in lines[0]
    assert not (out / "manifests").exists()


@pytest.mark.parametrize("kill_after,mode", [(5, ()), (10, ("--in-process",))], ids=["ray", "in-process"])
def test_kill_between_the_model_tables_then_resume_equals_the_whole_run(tmp_path, corpus, whole, kill_after, mode):
    """Through Ray the 5th commit lands wherever the pipelining puts it; any landing must resume to the whole
    run. In-process the 10th commit lands after the first unit and the second unit's first tables, so the
    resume computes the second unit alone in a fresh process: its rows must not depend on what the process
    computed before (GrabCut's draws from OpenCV's global RNG did, until it was reseeded per call)."""
    out = tmp_path / "out"
    config = _config(tmp_path, corpus, out)
    proc = _job(config, *mode, faults=f"kill_after_commits={kill_after}")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert _job(config, "--resume", "--in-process").returncode == 0
    assert validate_dataset(out) == []
    for table in TABLES:
        got, want = sorted_rows(out, table), sorted_rows(whole, table)
        assert len({tuple(r[k] for k in PRIMARY_KEYS[table]) for r in got}) == len(got), f"duplicates in {table}"
        assert got == want, f"{table} differs after resume"
