"""The choice rule (benchmarks/model_v2_collect.py --choose): gains pooled over every pair the ablation (or the
quality phase) scored outside the held-out val split, each report weighted by its pairs, then averaged over a
variant's seeds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _isa_model_helpers import benchmark_tool

TOOL = Path(__file__).parents[1] / "benchmarks" / "model_v2_collect.py"
choose = benchmark_tool("model_v2_collect").choose


def _report(runs: Path, run: str, name: str, gain: float | None, pairs: int,
            kept: dict[str, tuple[float, int]] | None = None, phase: str = "ablation", cut: float = 0.5) -> None:
    """One validation.json as model_v2_gpu.sh names it and isa_model validate writes it; kept: edit type ->
    (PSNR outside the mask, its pairs); cut: the report's blend-mask cut where its name has none."""
    folder = runs / run / f"{phase}-{name}"
    folder.mkdir(parents=True)
    per_type = {t: {"psnr_kept": psnr, "pairs": n} for t, (psnr, n) in (kept or {}).items()}
    if "-t" in name:
        cut = float(name.rsplit("-t", 1)[1])
    (folder / "validation.json").write_text(json.dumps({
        "overall": {"gain_db": gain}, "pairs": pairs, "per_edit_type": per_type, "mask_threshold": cut,
        "weights": "model" if "-model" in name else "ema"}))


def test_choose_pools_test_and_extra_val_by_pairs(tmp_path: Path) -> None:
    # On the 8 test pairs ew1 wins, on the 32 pairs of the extra val set mw0.1 wins by more: pooled, mw0.1.
    _report(tmp_path, "ew1-s0", "test-t0.5", 2.0, 8)
    _report(tmp_path, "ew1-s0", "val-p1pack-t0.5", 0.0, 32)  # pooled 0.4
    _report(tmp_path, "mw0.1-s0", "test-t0.5", 1.0, 8)
    _report(tmp_path, "mw0.1-s0", "val-p1pack-t0.5", 1.0, 32)  # pooled 1.0
    assert choose(tmp_path) == ("mw0.1", "0.5", "ema", "final")


def test_choose_means_over_seeds_and_reads_cuts(tmp_path: Path) -> None:
    _report(tmp_path, "ew3-s0", "test-t0.7", 3.0, 10)
    _report(tmp_path, "ew3-s1", "test-t0.7", -2.0, 10)  # ew3 at 0.7: mean 0.5
    _report(tmp_path, "ew3-s0", "test-t0.5", 0.9, 10)
    _report(tmp_path, "ew3-s1", "test-t0.5", 0.7, 10)  # ew3 at 0.5: mean 0.8
    _report(tmp_path, "noise-s0", "test-t0.5", 9.0, 10)  # not a loss-weight run: never chosen
    _report(tmp_path, "ew1-s0", "test-t0.5", None, 10)  # no gain (no pairs scored): left out
    assert choose(tmp_path) == ("ew3", "0.5", "ema", "final")


def test_choose_skips_a_cut_that_breaks_the_kept_bar(tmp_path: Path) -> None:
    # Cut 0.2 gains more, but its removal pairs keep 39 dB pooled (41 on 10 test pairs, 38 on 20 val pairs).
    _report(tmp_path, "ew1-s0", "test-t0.2", 2.0, 10, {"removal": (41.0, 10), "background": (20.0, 5)})
    _report(tmp_path, "ew1-s0", "val-p1pack-t0.2", 2.0, 20, {"removal": (38.0, 20)})
    # Cut 0.5 keeps 42.5 pooled; background's kept (its object) is not held to the bar.
    _report(tmp_path, "ew1-s0", "test-t0.5", 1.0, 10, {"removal": (44.0, 10), "background": (20.0, 5)})
    _report(tmp_path, "ew1-s0", "val-p1pack-t0.5", 1.0, 20, {"removal": (41.0, 10)})
    assert choose(tmp_path) == ("ew1", "0.5", "ema", "final")


def test_choose_keeps_raw_weights_apart_from_ema(tmp_path: Path) -> None:
    # The raw weights' reports (*-model-t<cut>) are their own candidate, not pooled with the EMA's.
    _report(tmp_path, "ew1-s0", "test-t0.5", 1.0, 10)
    _report(tmp_path, "ew1-s0", "test-model-t0.5", 1.5, 10)
    _report(tmp_path, "ew1-s1", "test-t0.5", 1.0, 10)
    _report(tmp_path, "ew1-s1", "test-model-t0.5", 0.7, 10)  # raw: mean 1.1 over seeds; EMA: 1.0
    assert choose(tmp_path) == ("ew1", "0.5", "model", "final")


def test_quality_choice_of_cut_and_checkpoint_leaves_out_the_held_out_val(tmp_path: Path) -> None:
    # The quality phase scores its final checkpoint at several cuts and the one it resumed from at 0.5; val (the
    # quality table's pairs) would pick the resumed one, but only test and the extra val set choose.
    q = {"phase": "quality", "cut": 0.5}
    run = "ew1b16pl-s0"
    _report(tmp_path, run, "val", 9.0, 50, {"recolour": (45.0, 10)}, **q)
    _report(tmp_path, run, "val-resumed", 9.0, 50, {"recolour": (45.0, 10)}, **q)
    for name in ("test-resumed", "val-p1pack-resumed"):
        _report(tmp_path, run, name, 2.6, 50, {"recolour": (41.0, 10)}, **q)
    for name, kept in (("test", 39.0), ("val-p1pack", 39.5)):  # final at 0.5: breaks the kept bar
        _report(tmp_path, run, name, 3.0, 50, {"recolour": (kept, 10)}, **q)
    for cut, gain, kept in ((0.6, 2.8, 40.5), (0.7, 2.5, 41.5)):
        _report(tmp_path, run, f"val-t{cut}", 0.0, 50, {"recolour": (30.0, 10)}, phase="quality")
        _report(tmp_path, run, f"test-t{cut}", gain, 50, {"recolour": (kept, 10)}, phase="quality")
        _report(tmp_path, run, f"val-p1pack-t{cut}", gain, 50, {"recolour": (kept, 10)}, phase="quality")
    result = subprocess.run([sys.executable, str(TOOL), "--choose", str(tmp_path), "quality"],
                            capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["ew1b16pl", "0.6", "ema", "final"]
    for folder in tmp_path.glob(f"{run}/quality-*-t0.6"):
        shutil.rmtree(folder)
    assert choose(tmp_path, "quality") == ("ew1b16pl", "0.5", "ema", "resumed")  # 2.6 pooled beats 0.7's 2.5
    with pytest.raises(SystemExit, match="no ablation reports"):  # the ablation's choice reads its own phase only
        choose(tmp_path)


def test_quality_choice_with_a_held_out_seed_lets_the_trained_on_val_choose(tmp_path: Path) -> None:
    # HELD_OUT: the quality table quotes an unseen seed's val (`held-p41pack`), so the trained-on corpus's val
    # joins test in the choice. Its recolour pairs break the bar at the final checkpoint, which test alone would
    # take; the held-out set would pick the final checkpoint too, but never chooses.
    q = {"phase": "quality", "cut": 0.5}
    run = "ew1b16pl-s0"
    _report(tmp_path, run, "test", 3.0, 30, {"recolour": (41.0, 4)}, **q)
    _report(tmp_path, run, "test-resumed", 2.5, 30, {"recolour": (41.0, 4)}, **q)
    _report(tmp_path, run, "val", 3.0, 100, {"recolour": (39.0, 14)}, **q)
    _report(tmp_path, run, "val-resumed", 2.5, 100, {"recolour": (40.8, 14)}, **q)
    _report(tmp_path, run, "held-p41pack", 9.0, 100, {"recolour": (45.0, 14)}, **q)
    _report(tmp_path, run, "held-p41pack-resumed", 0.0, 100, {"recolour": (30.0, 14)}, **q)
    assert choose(tmp_path, "quality") == ("ew1b16pl", "0.5", "ema", "final")  # val quoted: test alone chooses
    result = subprocess.run([sys.executable, str(TOOL), "--choose", str(tmp_path), "quality", "--quoted", "held-p41pack"],
                            capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["ew1b16pl", "0.5", "ema", "resumed"]


def test_choose_without_a_cut_that_keeps_the_bar_is_one_line(tmp_path: Path) -> None:
    _report(tmp_path, "ew1-s0", "test-t0.2", 2.0, 10, {"recolour": (35.0, 10)})
    result = subprocess.run([sys.executable, str(TOOL), "--choose", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "keeps 40.0 dB" in result.stderr and "Traceback" not in result.stderr


def test_choose_without_reports_is_one_line(tmp_path: Path) -> None:
    _report(tmp_path, "noise-s0", "test-t0.5", 1.0, 10)
    result = subprocess.run([sys.executable, str(TOOL), "--choose", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "no ablation reports" in result.stderr and "Traceback" not in result.stderr


def test_summary_keeps_the_means_and_leaves_each_pairs_row_in_its_report(tmp_path: Path) -> None:
    _report(tmp_path, "ew1-s0", "test", 1.5, 2)
    report = tmp_path / "ew1-s0" / "ablation-test" / "validation.json"
    full = {**json.loads(report.read_text()), "per_pair": [{"pair_id": "a", "psnr": 30.0}, {"pair_id": "b", "psnr": 31.0}]}
    report.write_text(json.dumps(full))
    summary = benchmark_tool("model_v2_collect").run_summary(tmp_path / "ew1-s0", "ablation")
    assert summary["steps"] == 0 and summary["validation"]["test"]["overall"] == {"gain_db": 1.5}
    assert "per_pair" not in summary["validation"]["test"]
    assert len(json.loads(report.read_text())["per_pair"]) == 2  # the report itself is left whole


def test_summary_lines_name_the_checkpoint_each_report_scored(tmp_path: Path) -> None:
    # A quality call scores its final checkpoint and the one it resumed from: each line names its own.
    for name, ckpt, gain in (("quality-val", "step_0003466", 3.4), ("quality-val-resumed", "step_0003241", 3.3)):
        folder = tmp_path / "runs" / "ew1-s0" / name
        folder.mkdir(parents=True)
        (folder / "validation.json").write_text(json.dumps(
            {"checkpoint": ckpt, "overall": {"gain_db": gain, "isa_vs_dense_psnr": 40.0}, "per_edit_type": {}}))
    (tmp_path / "runs" / "ew1-s0" / "metrics.jsonl").write_text(
        json.dumps({"step": 3466, "loss": 0.3, "tokens_per_s": 1.0, "step_s": 0.2}) + "\n")
    result = subprocess.run([sys.executable, str(TOOL), str(tmp_path / "runs"), "quality", str(tmp_path / "q.json")],
                            capture_output=True, text=True, check=True)
    lines = dict(line.split()[1:3] for line in result.stdout.splitlines())
    assert lines == {"val": "step_0003466", "val-resumed": "step_0003241"}


def test_gathering_without_a_runs_folder_is_one_line(tmp_path: Path) -> None:
    for args in ([], [str(tmp_path / "missing"), "quality", str(tmp_path / "q.json")]):
        result = subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("model_v2_collect.py: error:")
