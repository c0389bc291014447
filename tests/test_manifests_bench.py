"""Smoke run of the manifest scale benchmark at a tiny size: it builds, measures and reports (no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_manifest_scale_benchmark_smoke(tmp_path):
    out = tmp_path / "scale.json"
    done = subprocess.run(
        [sys.executable, "benchmarks/manifest_scale.py", "--rows", "2000", "--repeats", "1", "--json-out", str(out),
         "--writers", "2", "--commits", "3", "--snapshot-files", "20", "--mask-objects", "3"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["dataset"]["clips_rows"] == 2000 and report["dataset"]["scores_rows"] == 6000
    operations = {r["operation"]: r for r in report["results"]}
    assert {"summary clips", "validate", "filtered read scores (blur > 400, 2 cols)"} <= set(operations)
    assert all(r["median_s"] > 0 and r["peak_rss_mib"] > 0 for r in report["results"])
    assert "bar: summary clips" in done.stdout
    assert report["concurrent_commits"]["rows_checked"] == 6 and report["concurrent_commits"]["commits_per_s"] > 0
    assert report["snapshot_open"]["files"] == 20
    assert report["object_masks"]["rows_read"] == 50  # one object's 50 frames
