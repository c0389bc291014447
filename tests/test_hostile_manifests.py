"""Hostile values inside Parquet manifests, given to every `manifests` command.

Rows committed past the writer's checks carry path traversal and other escapes in URIs (`../..`, absolute,
`file:`), a megabyte string, and NaN / inf scores. Every command must end as a report (exit 0), findings
(exit 1) or one `error:` line (exit 2), never a traceback, and write nothing outside the dataset root and
the output it was given. `validate` must name the bad URIs and the non-finite values. The test prints each
command and its outcome.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from _manifests_helpers import clip_row, commit_raw, schema_of, score_row, small_dataset

from manifests import read_table

REPO = Path(__file__).resolve().parents[1]
ESCAPES = ["../../../../etc/passwd", "/etc/passwd", "file:///etc/passwd", "clips/../../outside.mp4"]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("hostile")
    root = base / "dataset"
    tables = small_dataset(root, n_clips=12, n_objects=2)
    video = tables["clips"].column("video_id")[0].as_py()
    clips = [clip_row(900 + i, video_id=video, uri=uri) for i, uri in enumerate(ESCAPES)]
    clips.append(clip_row(950, video_id=video, uri="clips/" + "x" * 1_000_000 + ".mp4"))
    commit_raw(root, "clips", "hostile-clips", pa.Table.from_pylist(clips, schema=schema_of("clips")))
    scores = [score_row(clips[0]["clip_id"], signal=s, value=v)
              for s, v in (("nan", math.nan), ("inf", math.inf), ("ninf", -math.inf))]
    commit_raw(root, "scores", "hostile-scores", pa.Table.from_pylist(scores, schema=schema_of("scores")))
    (base / "outside.mp4").write_bytes(b"not to be read")
    return root


def _tree(path: Path) -> list[str]:
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*"))


def _commands(root: Path, out: Path) -> dict[str, list[str]]:
    r = str(root)
    return {
        "summary": ["summary", r], "summary clips": ["summary", r, "clips"], "schema": ["schema", r, "clips"],
        "head": ["head", r, "clips", "-n", "50"], "head json": ["head", r, "scores", "-n", "50", "--json"],
        "filter": ["filter", r, "scores", "value > 0"], "filter uri": ["filter", r, "clips", 'uri == "/etc/passwd"'],
        "stats": ["stats", r, "scores", "value", "--out", str(out / "stats")],
        "validate": ["validate", r, "--json"], "validate files": ["validate", r, "--check-files"],
        "snapshot": ["snapshot", r, "--out", str(out / "snap.json")], "sample": ["sample", r, "--out", str(out / "s.png")],
        "compact": ["compact", r], "gc": ["gc", r, "--dry-run"], "migrate": ["migrate", r],
    }


def test_every_manifests_command_survives_hostile_rows(hostile, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    outside_before = _tree(hostile.parent)
    results = {}
    for name, args in _commands(hostile, out).items():
        proc = subprocess.run([sys.executable, "-m", "manifests", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=300)
        results[name] = proc
        assert "Traceback" not in proc.stderr, (name, proc.stderr[-2000:])
        assert proc.returncode in (0, 1, 2), (name, proc.returncode, proc.stderr[-2000:])
        if proc.returncode == 2:
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) < 2000, (name, proc.stderr)
    print(f"\n{'command':<16} exit  first line")
    for name, proc in results.items():
        first = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[:1]
        print(f"{name:<16} {proc.returncode:<5} {first[0][:90] if first else ''}")

    assert results["validate"].returncode == 1
    issues = json.loads(results["validate"].stdout)["issues"]
    named = {example for issue in issues if issue["check"] == "uri" for example in issue["examples"]}
    assert set(ESCAPES) <= named, f"validate does not name {set(ESCAPES) - named}"
    assert any(i["table"] == "scores" and "NaN or infinite" in i["message"] and i["count"] == 3 for i in issues)
    # nothing new next to the dataset; compact may rewrite files inside it, gc ran dry
    assert _tree(hostile.parent) == [p for p in _tree(hostile.parent) if p.startswith("dataset")] + [
        p for p in outside_before if not p.startswith("dataset")]
    assert (hostile.parent / "outside.mp4").read_bytes() == b"not to be read"
    assert read_table(hostile, "clips").num_rows == 12 + len(ESCAPES) + 1  # all still there after compact
