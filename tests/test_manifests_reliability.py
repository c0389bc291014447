"""Reliability under a careless operator: gc while writers commit, a torn log, lost or altered parts, forged
log paths, pinned versions after gc. Each case ends in correct data or a one-line error naming the unit,
never silently fewer rows."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _manifests_helpers import assert_one_line_error, run_cli, run_json, score_row

from manifests import (
    ManifestError,
    ManifestWriter,
    commit_unit_tables,
    delta,
    housekeeping,
    read_table,
    take_snapshot,
    validate_dataset,
)
from manifests.housekeeping import compact_table, gc_dataset
from manifests.layout import table_dir
from manifests.leases import leases_dir

SHORT = {"allow_short_retention": True}


def _ids(root: Path, table: str = "scores") -> list[str]:
    return sorted(read_table(root, table, columns=["clip_id"]).column("clip_id").to_pylist())


def _units(root: Path, n: int, table: str = "scores") -> None:
    for k in range(n):
        ManifestWriter(root, table).write(f"u{k}", [score_row(f"c{k}-{i}") for i in range(2)])


def _commit_of(root: Path, table: str, unit: str) -> Path:
    """The log file of the commit that added `unit`'s rows to `table`."""
    for path in sorted((table_dir(root, table) / "_delta_log").glob("*.json")):
        if f'"liveditor.unit":"{unit}"' in path.read_text().replace(" ", ""):
            return path
    raise AssertionError(f"no commit of {unit}")


def test_gc_between_a_writers_files_and_its_commit_collects_nothing_of_it(tmp_path, monkeypatch):
    """The reproduction of data loss: gc (window 0, its clock a minute ahead so that every file is old enough)
    runs after a writer wrote its files and before it commits, for the table commits and the completion record."""
    real_commit, real_time = delta.commit, time.time
    pending, collected = [], []

    def commit_after_gc(table, actions, *args, **kwargs):
        folder = Path(table.table_uri.removeprefix("file://"))
        pending.append({a.path for a in actions} - {f.path for f in delta.files(delta.load(folder))})
        collected.append(gc_dataset(tmp_path, 0, **SHORT))
        return real_commit(table, actions, *args, **kwargs)

    _units(tmp_path, 1)
    monkeypatch.setattr(housekeeping.time, "time", lambda: real_time() + 60)
    monkeypatch.setattr(delta, "commit", commit_after_gc)
    commit_unit_tables(tmp_path, "u9", {"scores": [score_row("x")], "errors": []})
    monkeypatch.undo()
    assert [len(files) for files in pending] == [1, 0, 1]  # uncommitted files of scores, (empty) errors, the record
    assert all(files == [] for run in collected for files in run.values())
    assert _ids(tmp_path) == ["c0-0", "c0-1", "x"]
    assert [i.check for i in validate_dataset(tmp_path) if i.check != "reference"] == []
    assert not list(leases_dir(tmp_path).glob("*"))  # every lease released


def test_gc_honours_fractional_hours_and_refuses_a_short_window_unless_asked(tmp_path):
    _units(tmp_path, 1)
    orphan = table_dir(tmp_path, "scores") / "dead.00000000000000aa-00000.parquet"
    pq.write_table(pa.table({"x": [1]}), orphan)
    half_hour_ago = time.time() - 1800
    os.utime(orphan, (half_hour_ago, half_hour_ago))
    with pytest.raises(ManifestError, match="below the 168-hour floor"):
        gc_dataset(tmp_path, 1)
    assert gc_dataset(tmp_path, 0.9, **SHORT)["scores"] == [] and orphan.exists()  # younger than 0.9 h
    assert gc_dataset(tmp_path, 0.4, **SHORT)["scores"] == [orphan.name] and not orphan.exists()
    assert_one_line_error(run_cli("gc", tmp_path, "--retention-hours", "24"), 2, "--allow-short-retention")
    for bad in ("inf", "nan", "1e30", "-1"):
        done = run_cli("gc", tmp_path, "--retention-hours", bad)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr


def test_a_stale_lease_no_longer_protects_and_is_removed(tmp_path):
    _units(tmp_path, 1)
    token = "00000000000000bb"
    orphan = table_dir(tmp_path, "scores") / f"dead.{token}-00000.parquet"
    pq.write_table(pa.table({"x": [1]}), orphan)
    leases_dir(tmp_path).mkdir(parents=True, exist_ok=True)
    lease = leases_dir(tmp_path) / f"{token}.lease"
    lease.write_text("{}")
    assert gc_dataset(tmp_path, 0, **SHORT)["scores"] == [] and orphan.exists()  # a live writer's file
    two_days_ago = time.time() - 48 * 3600
    os.utime(lease, (two_days_ago, two_days_ago))
    assert gc_dataset(tmp_path, 0, **SHORT)["scores"] == [orphan.name]
    assert not orphan.exists() and not lease.exists()


def test_registered_snapshots_keep_their_files_until_released(tmp_path):
    _units(tmp_path, 3)
    registered = run_json("snapshot", tmp_path, "--name", "train-v1")
    assert registered["registered_as"] == "train-v1"
    old_version = registered["tables"]["scores"]["version"]
    compact_table(tmp_path, "scores")
    assert gc_dataset(tmp_path, 0, **SHORT)["scores"] == []  # the compacted-away files are the snapshot's
    assert take_snapshot(tmp_path, ["scores"], {"scores": old_version}).table("scores").rows == 6
    assert len(gc_dataset(tmp_path, 0, dry_run=True, ignore_snapshots=True, **SHORT)["scores"]) == 3
    assert run_json("snapshot", tmp_path, "--list")["registered"]["train-v1"]["files"] == 3
    assert run_cli("snapshot", tmp_path, "--release", "train-v1").returncode == 0
    assert len(gc_dataset(tmp_path, 0, **SHORT)["scores"]) == 3
    assert _ids(tmp_path) == sorted(f"c{k}-{i}" for k in range(3) for i in range(2))
    done = run_cli("snapshot", tmp_path, "--version", f"scores={old_version}", "--no-register")
    assert_one_line_error(done, 2, "no longer exist")


def test_an_emptied_commit_is_an_error_naming_the_unit_and_its_part_is_kept(tmp_path):
    _units(tmp_path, 3)
    _commit_of(tmp_path, "scores", "u1").write_text("")
    with pytest.raises(ManifestError, match="unit u1's rows are missing"):
        read_table(tmp_path, "scores")
    assert_one_line_error(run_cli("summary", tmp_path), 2, "unit u1")
    texts = [str(i) for i in validate_dataset(tmp_path)]
    assert any("unit u1" in t for t in texts), texts
    assert not any("gc" in t and "removes" in t for t in texts), texts  # no advice to delete the evidence
    part = next(table_dir(tmp_path, "scores").glob("u1.*.parquet"))
    assert gc_dataset(tmp_path, 0, **SHORT)["scores"] == [] and part.exists()


def test_a_table_short_of_its_recorded_rows_names_the_unit(tmp_path):
    """A commit whose add action was cut out (the file not empty, so only the record can tell)."""
    _units(tmp_path, 3)
    commit = _commit_of(tmp_path, "scores", "u2")
    commit.write_text("".join(line + "\n" for line in commit.read_text().splitlines() if not line.startswith('{"add"')))
    # A new process reads the tampered log (this one caches the table it wrote).
    assert_one_line_error(run_cli("head", tmp_path, "scores"), 2, "unit u2 committed 2 rows by its completion record")
    done = run_cli("validate", tmp_path, "--json")
    issues = json.loads(done.stdout)["issues"]
    assert any(i["check"] == "unit" and "unit u2" in i["message"] for i in issues), issues
    assert any("gc keeps these files" in i["message"] for i in issues), issues


def test_a_lost_part_names_its_unit(tmp_path):
    _units(tmp_path, 2)
    next(table_dir(tmp_path, "scores").glob("u1.*.parquet")).unlink()
    with pytest.raises(ManifestError, match="unit u1: .*committed part is missing"):
        read_table(tmp_path, "scores")


def test_an_altered_part_with_the_same_row_count_fails_validation(tmp_path):
    _units(tmp_path, 2)
    part = next(table_dir(tmp_path, "scores").glob("u1.*.parquet"))
    data = pq.read_table(part)
    values = pa.array([99.0] * data.num_rows, data.schema.field("value").type)
    pq.write_table(data.set_column(data.schema.get_field_index("value"), "value", values), part)
    issues = [i for i in validate_dataset(tmp_path) if i.check == "unit"]
    assert issues and issues[0].examples == ("u1",), [str(i) for i in issues]


def test_a_log_entry_leaving_the_table_is_refused(tmp_path):
    _units(tmp_path, 1)
    outside = tmp_path / "x.parquet"
    pq.write_table(pq.read_table(next(table_dir(tmp_path, "scores").glob("u0.*.parquet"))), outside)
    log = table_dir(tmp_path, "scores") / "_delta_log"
    version = len(list(log.glob("*.json")))
    add = {"add": {"path": "../../x.parquet", "size": outside.stat().st_size, "partitionValues": {},
                   "modificationTime": 0, "dataChange": True, "stats": json.dumps({"numRecords": 2})}}
    info = {"commitInfo": {"timestamp": 0, "operation": "WRITE"}}
    (log / f"{version:020d}.json").write_text(json.dumps(add) + "\n" + json.dumps(info) + "\n")
    with pytest.raises(ManifestError, match="not a file of this table"):
        read_table(tmp_path, "scores")
