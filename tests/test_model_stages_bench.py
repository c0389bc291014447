"""Smoke run of the GPU model-stage benchmark on a CPU at tiny sizes: it measures, reports and checks (no timing asserts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from curation.models.precision import autocast

REPO = Path(__file__).resolve().parents[1]


def test_model_stages_benchmark_tiny_cpu(tmp_path):
    out = tmp_path / "stages.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "YOLO_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "LIVEDITOR_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "benchmarks/model_stages_gpu.py", "--device", "cpu", "--tiny", "--workers", "1",
         "--objects", "3", "--out", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["weights"] == "random-init" and report["tiny"] and report["tracker"]["fuse_score"] is False
    models = {(r["model"], r["what"].split(" (")[0], r["batch"]) for r in report["models"]}
    assert ("yolo11n", "forward", 2) in models and ("sam vit_b", "image encoder", 2) in models
    assert ("ViT-S-32", "image encoder", 2) in models
    for r in report["models"]:
        assert r[f"{r['items']}_per_s"] > 0 and r["ms_per_batch"] > 0
        assert r["precision"] == "fp32"  # bf16 / fp16 are CUDA-only; a CPU run must say it ran fp32
        if r["gflop_per_item"] is not None:  # achieved rate = FLOPs per frame x frames per second
            assert r["tflops"] == pytest.approx(r["gflop_per_item"] * 1e9 * r[f"{r['items']}_per_s"] / 1e12)
    [stage] = report["stages"]
    assert stage["workers"] == 1 and stage["clips"] == 2 and stage["errors"] == 0 and stage["first_error"] is None
    assert stage["scores_rows"] == 2 * 3  # alignment, consistency, aesthetic per clip
    # Every frame of every clip has tracks (ByteTrack at thresholds 0, IoU alone) and at most --objects boxes.
    assert stage["sam_frames_share"] == 1.0 and 1.0 <= stage["sam_prompts_per_sam_frame"] <= 3.0
    assert stage["objects_rows"] >= 2 and stage["clips_per_s"] > 0
    shares = stage["share_of_worker_time"]
    assert all(v >= 0 for v in shares.values()) and sum(shares.values()) == pytest.approx(1.0)
    assert stage["gpu_busy_mean_pct"] is None and report["bar"]["met"] is None  # no GPU to read
    assert "bar: GPU busy >= 70%" in done.stdout


def test_autocast_is_bf16_on_cuda_only():
    import warnings

    import torch

    assert autocast("cpu", "bf16").__class__.__name__ == "nullcontext"
    assert autocast("cuda", "fp32").__class__.__name__ == "nullcontext"
    with warnings.catch_warnings():  # a CPU-only build warns that it would disable CUDA autocast
        warnings.simplefilter("ignore")
        ctx = autocast("cuda:0", "bf16")
    assert isinstance(ctx, torch.autocast) and ctx.device == "cuda" and ctx.fast_dtype == torch.bfloat16
