"""Other readers of the Delta tables (pandas and Polars through deltalake, Ray Data) get exactly the
committed rows: never a killed writer's uncommitted file, never a compacted-away one."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from _manifests_helpers import clip_row

from manifests import ManifestWriter, read_table, take_snapshot
from manifests.housekeeping import compact_table


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    root = tmp_path_factory.mktemp("interop")
    writer = ManifestWriter(root, "clips")
    for k in range(4):
        writer.write(f"u{k}", [clip_row(10 * k + i) for i in range(3)])
    compact_table(root, "clips")
    writer.write("u4", [clip_row(100)])
    pq.write_table(read_table(root, "clips"), root / "manifests/clips/dead.00000000000000aa-00000.parquet")  # orphan
    expected = sorted(read_table(root, "clips", columns=["clip_id"]).column("clip_id").to_pylist())
    assert len(expected) == 13
    return root, expected


def test_pandas_through_deltalake(table):
    from deltalake import DeltaTable

    root, expected = table
    frame = DeltaTable(str(root / "manifests/clips")).to_pandas()
    assert sorted(frame["clip_id"]) == expected


def test_polars_read_delta(table):
    polars = pytest.importorskip("polars")
    root, expected = table
    assert sorted(polars.read_delta(str(root / "manifests/clips"))["clip_id"].to_list()) == expected


def test_ray_data_read_delta_and_snapshot_paths(table):
    import ray

    root, expected = table
    # a new local Ray even when `ray start` left a cluster on this machine (ray.init() would join that one)
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        rows = ray.data.read_delta(str(root / "manifests/clips")).to_pandas()
        assert sorted(rows["clip_id"]) == expected
        paths = [str(p) for p in take_snapshot(root).paths("clips")]
        assert sorted(ray.data.read_parquet(paths).to_pandas()["clip_id"]) == expected
    finally:
        ray.shutdown()
