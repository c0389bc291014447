"""Shared fixtures-as-functions for the manifests tests: small consistent datasets and raw writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from manifests import delta
from manifests.layout import data_file_name, table_dir
from manifests.schema import META_TABLE_KEY, META_VERSION_KEY, SCHEMA_VERSION, SCHEMAS
from manifests.synthetic import synthetic_tables, write_tables
from manifests.writer import mark_unit_complete

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "manifests", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300)


def run_json(*args: object) -> dict:
    done = run_cli(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_one_line_error(done: subprocess.CompletedProcess, code: int, text: str) -> None:
    assert done.returncode == code
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def small_dataset(root: Path, n_clips: int = 60, n_objects: int = 6, unit_rows: int = 25) -> dict[str, pa.Table]:
    """A valid dataset of all six tables under `root`; returns what was written."""
    tables = synthetic_tables(n_clips, clips_per_video=6, n_objects=n_objects)
    write_tables(root, tables, unit_rows=unit_rows)
    return tables


def commit_raw(
    root: Path,
    table: str,
    unit: str,
    data: pa.Table,
    metadata: dict[bytes, bytes] | None = None,
) -> Path:
    """Write `data` as one file and commit it as a complete unit, bypassing the writer's checks (to make bad files)."""
    if metadata is None:
        metadata = {META_VERSION_KEY: SCHEMA_VERSION.encode(), META_TABLE_KEY: table.encode()}
    folder = table_dir(root, table)
    current = delta.load(folder) or delta.create(folder, SCHEMAS[table])
    part = folder / data_file_name(unit, "0123456789abcdef", 0)
    pq.write_table(data.replace_schema_metadata(metadata), part)
    version = delta.digest(data)[1]
    delta.commit(current, [delta.add_action(part.name, part, data.num_rows)], SCHEMAS[table], unit, version, {})
    mark_unit_complete(root, unit, [table])
    return part


def provenance(stage: str = "test") -> dict[str, str]:
    return {"stage": stage, "stage_version": "1", "model_name": "none", "weights_id": "none"}


def clip_row(i: int, video_id: str = "v0", **changes: object) -> dict:
    row = {
        "clip_id": f"{video_id}-{i:07d}-{i + 10:07d}",
        "video_id": video_id,
        "start_frame": i,
        "end_frame": i + 10,
        "start_time_s": i / 25,
        "end_time_s": (i + 10) / 25,
        "fps": 25.0,
        "uri": f"clips/{video_id}-{i}.mp4",
        "shot_method": "histogram",
        "status": "ok",
        **provenance("shots"),
    }
    row.update(changes)
    return row


def video_row(video_id: str = "v0", **changes: object) -> dict:
    row = {"video_id": video_id, "uri": f"/data/raw/{video_id}.mp4", "sha256": "ab" * 32, "size_bytes": 1000,
           "status": "ok", **provenance("ingest")}
    row.update(changes)
    return row


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def schema_of(table: str) -> pa.Schema:
    return SCHEMAS[table]


def score_row(clip: str, signal: str = "blur", value: float = 1.0) -> dict:
    return {"clip_id": clip, "signal": signal, "value": value, **provenance("filters")}


def append_units(root: str, worker: int, units: int) -> int:
    """Spawned writer process: commit `units` one-row units of `scores`; returns how many were skipped."""
    from manifests.writer import ManifestWriter

    writer = ManifestWriter(root, "scores")
    skipped = 0
    for k in range(units):
        skipped += writer.write(f"w{worker}-{k:05d}", [score_row(f"w{worker}-{k:05d}")]).skipped
    return skipped


def write_same_unit(root: str, start) -> bool:
    """Spawned writer process: wait for the others, then commit one shared unit; returns whether it was skipped."""
    from manifests.writer import ManifestWriter

    start.wait()
    return ManifestWriter(root, "scores").write("shared", [score_row(f"c{i}") for i in range(50)]).skipped


def compact_in_loop(root: str, rounds: int) -> int:
    """Spawned housekeeping process: compact `scores` `rounds` times while writers append; files rewritten."""
    from manifests.housekeeping import compact_table

    return sum(compact_table(root, "scores", target_bytes=1 << 20).files_before for _ in range(rounds))
