"""`manifests report`: the yield funnel, reject reasons, gate pass rates and pairs per type and split, checked
against counts taken from the tables that were written; the PNG is a real image; bad input is one line."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
from _manifests_helpers import assert_one_line_error, run_cli, run_json, small_dataset
from PIL import Image

from manifests.report import FAILED, GATED, reason_key, report_text, yield_report
from manifests.schema import NO_MODEL, SCHEMAS
from manifests.writer import ManifestWriter, mark_unit_complete


def test_reason_key_drops_numbers() -> None:
    assert reason_key("blur 12.3 < min 40") == "blur < min"
    assert reason_key("motion 1e-05 < min 0.02") == "motion < min"
    assert reason_key("") == "unknown"


def test_report_counts_match_the_tables(tmp_path: Path) -> None:
    tables = small_dataset(tmp_path, n_clips=60, n_objects=12)
    rep = yield_report(tmp_path)
    videos, clips, pairs = (tables[t].to_pydict() for t in ("videos", "clips", "edit_pairs"))
    assert rep.videos == len(videos["video_id"]) and rep.videos_ok == videos["status"].count("ok")
    usable = [c for c, s, u in zip(clips["clip_id"], clips["status"], clips["uri"]) if s == "ok" and u]
    assert rep.clips == 60 and rep.usable_clips == len(usable) > 0
    assert rep.pairs == len(pairs["pair_id"]) == 12
    assert {t: sum(c.values()) for t, c in rep.by_type_split.items()} == Counter(pairs["edit_type"])
    hours = sum(d for d, s in zip(videos["duration_s"], videos["status"]) if s == "ok") / 3600
    assert np.isclose(rep.source_hours, hours) and np.isclose(rep.pairs_per_hour, 12 / hours)
    rejected = sum(s != "ok" for s in clips["status"])
    assert sum(rep.reject_reasons["clips"].values()) >= rejected
    # no per-gate scores rows: rates come from the written pairs' gates_passed
    assert rep.gate_rates_from == "edit_pairs" and rep.gate_rates["mask_area"] == (12, 12)
    text = report_text(rep)
    assert "usable clips" in text and "pairs per hour of source" in text and "edit types, 12 pairs" in text


def test_gate_rates_from_the_pairs_stage_counts(tmp_path: Path) -> None:
    tables = small_dataset(tmp_path, n_clips=20, n_objects=4)
    clip_ids = tables["clips"].column("clip_id").to_pylist()[:2]
    counts = {(clip_ids[0], GATED + "connected"): 3.0, (clip_ids[0], FAILED + "connected"): 1.0,
              (clip_ids[1], GATED + "connected"): 2.0, (clip_ids[1], FAILED + "connected"): 2.0,
              (clip_ids[0], GATED + "flicker"): 3.0, (clip_ids[0], FAILED + "flicker"): 0.0,
              (clip_ids[0], "pairs_dropped"): 2.0, (clip_ids[1], "pairs_dropped"): 1.0}
    n = len(counts)
    extra = pa.Table.from_pydict({
        "clip_id": [c for c, _ in counts], "signal": [s for _, s in counts], "value": list(counts.values()),
        "passed": [None] * n, "stage": ["pairs"] * n, "stage_version": ["1"] * n, "model_name": [NO_MODEL] * n,
        "weights_id": [NO_MODEL] * n}, schema=SCHEMAS["scores"])
    ManifestWriter(tmp_path, "scores").write("unit-pairs", extra, complete=False)  # the pairs stage's own unit
    mark_unit_complete(tmp_path, "unit-pairs", ["scores"])
    rep = yield_report(tmp_path)
    assert rep.gate_rates_from == "scores"
    assert rep.gate_rates == {"connected": (2, 5), "flicker": (3, 3)}
    assert rep.pairs_dropped == 3
    assert rep.reject_reasons["pairs"] == Counter({"connected": 3})


def test_cli_prints_and_draws(tmp_path: Path) -> None:
    small_dataset(tmp_path / "ds", n_clips=30, n_objects=6)
    png = tmp_path / "report.png"
    done = run_cli("report", tmp_path / "ds", "--out", png)
    assert done.returncode == 0, done.stderr
    assert "funnel:" in done.stdout and "gate pass rates" in done.stdout and str(png) in done.stdout
    with Image.open(png) as image:
        assert image.size[0] > 500 and image.size[1] > 400
    data = run_json("report", tmp_path / "ds", "--out", png)
    assert data["pairs"] == 6 and data["png"] == str(png)
    default = run_json("report", tmp_path / "ds")
    assert Path(default["png"]) == tmp_path / "ds" / "yield_report.png" and Path(default["png"]).is_file()


def test_cli_bad_root_is_one_line(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("report", tmp_path / "missing"), 2, "not a dataset root")
