"""LIVEditor training and CLIs: exact resume, DDP on CPU (gloo, 2 processes), validate / edit, clear errors."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _isa_model_helpers import pair_set, tiny
from safetensors.torch import load_file

from isa_model import checkpoint as ck
from isa_model.__main__ import main
from isa_model.train import train
from isa_model.validate import change_panel, rescore
from manifests.media.masks import write_mask_file

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return pair_set(tmp_path_factory.mktemp("pairs"))


def _cfg(root, steps):
    base = tiny(attention="dense")  # ISA itself is covered in test_isa_model.py; this keeps the steps fast
    return type(base)(base.name, base.model, type(base.data)(**{**base.data.__dict__, "root": str(root)}),
                      type(base.train)(**{**base.train.__dict__, "steps": steps, "ckpt_every": 2}))


def test_resume_gives_the_same_next_losses(root, tmp_path):
    logs = train(_cfg(root, 3), tmp_path / "a")
    straight = [r["loss"] for r in logs]
    assert all(0 <= r["data_s"] <= r["step_s"] for r in logs)  # the loader's wait is part of the step
    first = train(_cfg(root, 2), tmp_path / "b")
    resumed = train(_cfg(root, 3), tmp_path / "b", resume=True)
    assert [r["step"] for r in resumed] == [3]
    assert [r["loss"] for r in first] == straight[:2]
    assert [r["loss"] for r in resumed] == straight[2:]  # bitwise: weights, Adam, EMA, data position, RNG
    ema_a = load_file(ck.latest(tmp_path / "a" / "checkpoints") / "ema.safetensors")
    ema_b = load_file(ck.latest(tmp_path / "b" / "checkpoints") / "ema.safetensors")
    assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_a)


def test_ddp_on_cpu_with_gloo(root, tmp_path):
    """Two ranks launched as torchrun would, rendezvousing through a file and talking over loopback only
    (torchrun's own store listens on every interface)."""
    cmd = [sys.executable, "-m", "isa_model", "train", "--config", "tiny", "--attention", "dense", "--data", str(root),
           "--steps", "2", "--out", str(tmp_path / "ddp")]
    ranks = []
    for rank in range(2):
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "RANK": str(rank), "LOCAL_RANK": str(rank),
               "WORLD_SIZE": "2", "LIVEDITOR_DIST_INIT": f"file://{tmp_path / 'rendezvous'}", "GLOO_SOCKET_IFNAME": "lo"}
        ranks.append(subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    errors = [proc.communicate(timeout=600)[1] for proc in ranks]
    assert [proc.returncode for proc in ranks] == [0, 0], [e[-2000:] for e in errors]
    state = ck.load_state(ck.latest(tmp_path / "ddp" / "checkpoints"))
    assert len(state["rng"]) == 2 and not torch.equal(state["rng"][0], state["rng"][1])
    rows = [json.loads(x) for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and all(r["loss"] > 0 for r in rows)


@pytest.fixture(scope="module")
def run_dir(root, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--config", "tiny", "--data", str(root), "--steps", "2", "--out", str(out)]) == 0
    return out


def test_cli_validate_writes_metrics_and_previews(run_dir, capsys):
    val = run_dir / "val"
    assert main(["validate", "--ckpt", str(run_dir / "checkpoints"), "--out", str(val), "--config", "tiny",
                 "--steps", "2", "--max-pairs", "4"]) == 0
    report = json.loads((val / "validation.json").read_text())
    assert report["pairs"] == 4 and report["attention"] == "isa"
    assert set(report["per_edit_type"]) == {"invert", "sepia", "grayscale", "invert_box"}
    box = report["per_edit_type"]["invert_box"]
    # outside the mask the source is the target (up to H.264), inside it is the negative
    assert box["copy_psnr_outside"] > 25 > 15 > box["copy_psnr_inside"]
    per_pair = report["per_pair"]  # every scored pair once, with the scores its type's means come from
    assert len(per_pair) == 4 and len({r["pair_id"] for r in per_pair}) == 4
    for edit_type, means in report["per_edit_type"].items():
        own = [r["psnr"] for r in per_pair if r["edit_type"] == edit_type]
        assert len(own) == means["pairs"] and abs(sum(own) / len(own) - means["psnr"]) < 1e-9
    assert report["overall"]["isa_vs_dense_psnr"] > 0 and (val / "preview.png").is_file()
    assert (val / "preview.mp4").stat().st_size > 0 and "gain" in capsys.readouterr().out
    # the local edits whose kept region the model spoiled most, worst first, drawn with where it changed the source
    worst = report["worst_kept"]
    losses = [r["copy_psnr_kept"] - r["psnr_kept"] for r in worst["pairs"]]
    assert [r["edit_type"] for r in worst["pairs"]] == ["invert_box"] * box["pairs"] and losses == sorted(losses)[::-1]
    assert all((val / name).stat().st_size > 0 for name in worst["files"])


def test_validate_leaves_out_a_pair_with_nothing_edited_in_view(run_dir, tmp_path, capsys):
    # The val clip's local pair with its edit moved out of view: its target is its source, its mask empty. The copy
    # is then exact (PSNR at its 100 dB cap) and any change of the model's would cost tens of dB in its type's mean.
    root = pair_set(tmp_path / "pairs")
    clip = "synthetic0001-0000003-0000006"  # pair_set's held-out clip: 6 frames of 40x48
    shutil.copy(root / "clips" / f"{clip}.mp4", root / "pairs" / f"{clip}-invert_box.mp4")
    write_mask_file(root / "pairs" / f"{clip}-invert_box.mask.npz", np.zeros((6, 40, 48), bool))
    val = tmp_path / "val"
    assert main(["validate", "--ckpt", str(run_dir / "checkpoints"), "--out", str(val), "--data", str(root),
                 "--steps", "2"]) == 0
    report = json.loads((val / "validation.json").read_text())
    assert report["no_edit_in_view"] == [f"{clip}-invert_box"]
    assert report["pairs"] == 3 and set(report["per_edit_type"]) == {"invert", "sepia", "grayscale"}
    row = next(r for r in report["per_pair"] if r["pair_id"] == f"{clip}-invert_box")
    assert row["copy_psnr"] == pytest.approx(100.0) and math.isnan(row["psnr_edited"])
    assert "1 with nothing edited in view left out" in capsys.readouterr().out
    assert rescore(report)["overall"] == report["overall"]  # the rule applied twice changes nothing


def _pair(pair_id: str, psnr: float, copy: float, edited: float) -> dict:
    """A per-pair row as validate writes it."""
    return {"pair_id": pair_id, "edit_type": "addition", "psnr": psnr, "copy_psnr": copy, "ssim": 0.9,
            "copy_ssim": 0.9, "isa_vs_dense_psnr": 45.0, "psnr_kept": psnr + 10, "copy_psnr_kept": copy + 10,
            "psnr_edited": edited, "copy_psnr_edited": edited - 1}


def test_rescore_takes_an_old_reports_means_again_without_the_pairs_out_of_view(tmp_path, capsys):
    # Written before the rule: the out-of-view pair's -62 dB sits in its type's mean (-20.00 over three pairs).
    per_pair = [_pair("a", 31.0, 30.0, 15.0), _pair("b", 30.0, 29.0, 14.0), _pair("c", 38.0, 100.0, float("nan"))]
    old = {"per_pair": per_pair, "pairs": 3, "skipped": 0, "objective": "delta",
           "per_edit_type": {"addition": {"gain_db": -20.0}}, "overall": {"gain_db": -20.0},
           "attention_per_step": {"isa_ms": 1.0, "dense_ms": 2.0}}
    new = rescore(old)
    assert new["pairs"] == 2 and new["no_edit_in_view"] == ["c"] and new["per_pair"] == per_pair
    assert new["per_edit_type"]["addition"]["gain_db"] == pytest.approx(1.0)
    assert new["per_edit_type"]["addition"]["pairs"] == 2 and new["overall"]["psnr_kept"] == pytest.approx(40.5)
    path = tmp_path / "validation.json"
    path.write_text(json.dumps(old))
    assert main(["rescore", str(path)]) == 0
    assert json.loads(path.read_text())["overall"]["gain_db"] == pytest.approx(1.0)
    assert "+1.00" in capsys.readouterr().out
    path.write_text(json.dumps({"overall": {}}))  # a report without its pairs' rows cannot be taken again
    assert main(["rescore", str(path), str(tmp_path / "absent.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "per-pair rows" in err


def test_change_panel_shows_a_change_outside_the_edited_region_as_white_and_the_region_as_red():
    source = torch.zeros(3, 2, 4, 4)  # (C, T, H, W)
    pred = source.clone()
    pred[:, :, 0, 0] = 1.0  # a change of 1 (x4, clipped: full white) outside the edited region
    edited = torch.zeros(2, 4, 4)
    edited[:, 3, 3] = 1  # the pair edits this pixel; the model left it
    panel = (change_panel(source, pred, edited) + 1) / 2  # (3, T, H, W) in [0, 1]
    assert torch.equal(panel[:, :, 0, 0], torch.ones(3, 2))
    assert torch.allclose(panel[:, :, 3, 3], torch.tensor([0.35, 0.0, 0.0])[:, None].expand(3, 2))
    assert panel[:, :, 1, 1].abs().max() == 0  # unchanged and not edited: black


def test_cli_validate_isa_fp8_needs_the_triton_backend(run_dir, tmp_path, capsys):
    assert main(["validate", "--ckpt", str(run_dir / "checkpoints"), "--out", str(tmp_path), "--isa-fp8", "on"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "fp8_scores needs the triton backend, got 'torch'" in err


def test_cli_checkpoint_from_another_config_is_one_line_error(run_dir, tmp_path, capsys):
    assert main(["validate", "--ckpt", str(run_dir / "checkpoints"), "--out", str(tmp_path), "--config", "small"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "trained with config 'tiny', not 'small'" in err


def test_cli_edit_and_its_errors(run_dir, root, tmp_path, capsys):
    out = tmp_path / "edited.mp4"
    video = next((root / "clips").glob("*.mp4"))
    assert main(["edit", "--ckpt", str(run_dir / "checkpoints"), "--video", str(video), "--instruction",
                 "invert the colours", "--out", str(out), "--steps", "2"]) == 0
    assert out.stat().st_size > 0
    assert main(["edit", "--ckpt", str(run_dir / "checkpoints"), "--video", str(tmp_path / "nope.mp4"),
                 "--instruction", "x", "--out", str(tmp_path / "e.mp4")]) == 2
    assert main(["train", "--config", "nonexistent", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "nope.mp4: no such file" in err and "config 'nonexistent': no such file" in err
