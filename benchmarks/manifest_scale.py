"""Manifest scale benchmark: summary, a filtered projected read and validate on a 1.7M-clip dataset.

Builds `clips` (default 1.7M rows), `scores` (3 signals per clip), and `videos` through
ManifestWriter in 100k-row units, then runs each operation in a fresh Python process, timing it
end to end (interpreter start and imports included) and taking that child's own peak RSS from
os.wait4's rusage. Bar (DESIGN.md section 8): `summary` < 2 s and < 1 GB peak RSS.

Two Delta Lake figures follow: commits per second with `--writers` processes appending `--commits`
one-row units each to one table (then a check that every row is there once), and the cost of taking a
snapshot and opening a table of `--snapshot-files` files in a fresh process.

    python benchmarks/manifest_scale.py [--rows 1700000] [--json-out benchmarks/results/manifest_scale.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SUMMARY_BAR_S = 2.0
SUMMARY_BAR_RSS_MB = 1024.0
BLUR_THRESHOLD = 400.0
FILTERED_READ = (
    "import sys, pyarrow.compute as pc; from manifests import read_table; "
    "t = read_table(sys.argv[1], 'scores', columns=['clip_id', 'value'], "
    f"filter=(pc.field('signal') == 'blur') & (pc.field('value') > {BLUR_THRESHOLD})); print(t.num_rows)"
)


def operations(root: Path) -> dict[str, list[str]]:
    """Name -> argv of each measured operation (run from the repository root)."""
    cli = [sys.executable, "-m", "manifests"]
    return {
        "python + import (baseline)": [sys.executable, "-c", "import manifests.cli"],
        "summary clips": [*cli, "summary", str(root), "clips", "--json"],
        "summary (all tables)": [*cli, "summary", str(root), "--json"],
        "filtered read scores (blur > 400, 2 cols)": [sys.executable, "-c", FILTERED_READ, str(root)],
        "filter --count (CLI)": [*cli, "filter", str(root), "scores", f'signal == "blur" and value > {BLUR_THRESHOLD}',
                                 "--count"],
        "validate": [*cli, "validate", str(root), "--json"],
    }


def measure(argv: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MiB (this child only) and exit code of one fresh process."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    child = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"error: {' '.join(argv[:4])} failed: {child.stderr.read().decode().strip()[-400:]}")
    return seconds, usage.ru_maxrss / 1024.0, child.returncode


def build(root: Path, rows: int, signals: int, unit_rows: int) -> dict[str, float | int]:
    """Generate and write the dataset (run in a child process, see build_in_child)."""
    sys.path.insert(0, str(REPO))
    from manifests.synthetic import SIGNALS, synthetic_clips, synthetic_errors, synthetic_scores, synthetic_videos, write_tables

    start = time.perf_counter()
    videos = synthetic_videos(max(1, rows // 17))
    clips = synthetic_clips(videos, rows)
    names = tuple(SIGNALS[:signals]) + tuple(f"signal_{k}" for k in range(signals - len(SIGNALS)))
    tables = {"videos": videos, "clips": clips, "scores": synthetic_scores(clips, names), "errors": synthetic_errors(3)}
    generated = time.perf_counter() - start
    write_tables(root, tables, unit_rows=unit_rows)
    files = [p for p in (root / "manifests").rglob("*.parquet")]
    return {
        "videos_rows": videos.num_rows,
        "clips_rows": clips.num_rows,
        "scores_rows": tables["scores"].num_rows,
        "generate_s": round(generated, 2),
        "write_s": round(time.perf_counter() - start - generated, 2),
        "parquet_files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
    }


def build_in_child(root: Path, args: argparse.Namespace) -> dict[str, float | int]:
    """Build in a separate process: a child's peak RSS includes its parent's at fork (Linux keeps the
    high-water mark across exec), so the measuring parent must never hold the dataset or pyarrow."""
    argv = [sys.executable, __file__, "--build-only", "--dir", str(root), "--rows", str(args.rows),
            "--signals", str(args.signals), "--unit-rows", str(args.unit_rows)]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: building the dataset failed: {done.stderr.strip()[-400:]}")
    return json.loads(done.stdout)


def concurrent_commits(root: Path, writers: int, commits: int) -> dict[str, float | int]:
    """Commits/s of `writers` spawned processes appending `commits` one-row units each to one table."""
    import multiprocessing

    sys.path.insert(0, str(REPO / "tests"))
    from _manifests_helpers import append_units

    from manifests import read_table

    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(writers) as pool:
        skipped = pool.starmap(append_units, [(str(root), w, commits) for w in range(writers)])
    seconds = time.perf_counter() - start
    ids = read_table(root, "scores", columns=["clip_id"]).column("clip_id").to_pylist()
    if len(ids) != writers * commits or len(set(ids)) != len(ids) or any(skipped):
        raise SystemExit(f"error: concurrent commits lost or duplicated rows: {len(ids)} rows, {len(set(ids))} distinct")
    return {"writers": writers, "commits_per_writer": commits, "seconds": round(seconds, 2),
            "commits_per_s": round(writers * commits / seconds, 1), "rows_checked": len(ids)}


SNAPSHOT_OPEN = (
    "import sys, time; from manifests import take_snapshot, open_table; import deltalake; t = time.perf_counter(); "
    "s = take_snapshot(sys.argv[1], ['clips']); t1 = time.perf_counter(); d = open_table(sys.argv[1], 'clips', snapshot=s); "
    "t2 = time.perf_counter(); print(len(s.table('clips').files), round(t1 - t, 3), round(t2 - t1, 3))"
)


def snapshot_open(root: Path, files: int) -> dict[str, float | int]:
    """Write one unit of `files` one-row files, then time snapshot + open (footer checks) in a fresh process."""
    from manifests import ManifestWriter
    from manifests.synthetic import synthetic_clips, synthetic_videos

    clips = synthetic_clips(synthetic_videos(max(1, files // 17)), files)
    ManifestWriter(root, "clips", max_rows_per_shard=1).write("many-files", clips)
    seconds, rss, _ = measure([sys.executable, "-c", SNAPSHOT_OPEN, str(root)])
    done = subprocess.run([sys.executable, "-c", SNAPSHOT_OPEN, str(root)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    n, snap_s, open_s = done.stdout.split()
    return {"files": int(n), "process_s": round(seconds, 3), "take_snapshot_s": float(snap_s),
            "open_table_s": float(open_s), "peak_rss_mib": round(rss, 1)}


OBJECT_MASKS = (
    "import sys, time, pyarrow as pa; from manifests import take_snapshot; from manifests.reader import read_object_masks; "
    "s = take_snapshot(sys.argv[1], ['object_frames']); read_object_masks(sys.argv[1], 'warm-up', snapshot=s); "
    "t = time.perf_counter(); m = read_object_masks(sys.argv[1], sys.argv[2], snapshot=s); dt = time.perf_counter() - t; "
    "print(m.num_rows, round(dt * 1000, 1), round(pa.default_memory_pool().max_memory() / 2**20, 1))"
)


def object_masks(root: Path, objects: int, frames: int, mask_hw: tuple[int, int]) -> dict[str, float | int]:
    """Write `objects` x `frames` object_frames rows of `mask_hw` RLE masks; time reading one object's masks."""
    import pyarrow.parquet as pq

    from manifests import commit_unit_tables
    from manifests.synthetic import synthetic_clips, synthetic_object_frames, synthetic_objects, synthetic_videos

    clips = synthetic_clips(synthetic_videos(10), objects)
    objs = synthetic_objects(clips, objects)
    per_frame = synthetic_object_frames(objs, frames=frames, mask_hw=mask_hw)
    commit_unit_tables(root, "masks", {"objects": objs, "object_frames": per_frame})
    target = objs.column("object_id")[objects // 2].as_py()
    done = subprocess.run([sys.executable, "-c", OBJECT_MASKS, str(root), target], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    if done.returncode != 0:
        raise SystemExit(f"error: reading one object's masks failed: {done.stderr.strip()[-400:]}")
    rows, ms, arrow_peak = done.stdout.split()
    files = list((root / "manifests/object_frames").glob("*.parquet"))
    groups = [pq.ParquetFile(f).metadata.row_group(i) for f in files for i in range(pq.ParquetFile(f).metadata.num_row_groups)]
    return {"objects": objects, "frames_per_object": frames, "mask_hw": list(mask_hw),
            "table_mib": round(sum(f.stat().st_size for f in files) / 2**20, 1),
            "row_groups": len(groups), "largest_row_group_mib": round(max(g.total_byte_size for g in groups) / 2**20, 2),
            "rows_read": int(rows), "read_ms": float(ms), "arrow_peak_mib": float(arrow_peak)}


def machine() -> dict[str, object]:
    model = (next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name")), platform.processor())
             if Path("/proc/cpuinfo").exists() else platform.processor())
    mem_kb = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0) if Path("/proc/meminfo").exists() else 0
    return {"cpu": model, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1), "arch": platform.machine(),
            "python": platform.python_version(), "load_average_1m_at_end": round(os.getloadavg()[0], 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_700_000, help="clips rows (scores get rows x signals)")
    parser.add_argument("--signals", type=int, default=3)
    parser.add_argument("--unit-rows", type=int, default=100_000, help="rows per written unit (input batch)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="dataset folder to build in (kept); default: a temp folder, removed")
    parser.add_argument("--json-out", type=Path, default=REPO / "benchmarks/results/manifest_scale.json")
    parser.add_argument("--writers", type=int, default=8, help="processes appending to one table at once")
    parser.add_argument("--commits", type=int, default=200, help="one-row commits per writer")
    parser.add_argument("--snapshot-files", type=int, default=10_000, help="files in the table whose snapshot is timed")
    parser.add_argument("--mask-objects", type=int, default=600, help="objects (50 frames of 1080p masks each) for the mask read")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--delta-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only:
        print(json.dumps(build(args.dir, args.rows, args.signals, args.unit_rows)))
        return 0
    if args.delta_only:
        with tempfile.TemporaryDirectory(prefix="manifest_delta_") as scratch:
            commits = concurrent_commits(Path(scratch) / "commits", args.writers, args.commits)
            snapshot = snapshot_open(Path(scratch) / "files", args.snapshot_files)
            masks = object_masks(Path(scratch) / "masks", args.mask_objects, 50, (1080, 1920))
        print(json.dumps({"concurrent_commits": commits, "snapshot_open": snapshot, "object_masks": masks}))
        return 0
    root = args.dir or Path(tempfile.mkdtemp(prefix="manifest_scale_"))
    try:
        built = build_in_child(root, args)
        print(f"built {built['clips_rows']:,} clips + {built['scores_rows']:,} scores + {built['videos_rows']:,} videos "
              f"in {built['generate_s'] + built['write_s']:.1f} s: {built['parquet_files']} files, "
              f"{built['bytes'] / 2**20:.1f} MiB")
        results = []
        for name, argv in operations(root).items():
            runs = [measure(argv) for _ in range(args.repeats)]
            times = [r[0] for r in runs]
            results.append({"operation": name, "median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3),
                            "peak_rss_mib": round(max(r[1] for r in runs), 1)})
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)
    delta_argv = [sys.executable, __file__, "--delta-only", "--writers", str(args.writers), "--commits", str(args.commits),
                  "--snapshot-files", str(args.snapshot_files), "--mask-objects", str(args.mask_objects)]
    delta_done = subprocess.run(delta_argv, cwd=REPO, capture_output=True, text=True)
    if delta_done.returncode != 0:
        raise SystemExit(f"error: the Delta figures failed: {delta_done.stderr.strip()[-400:]}")
    delta_figures = json.loads(delta_done.stdout.splitlines()[-1])
    summary = next(r for r in results if r["operation"] == "summary clips")
    passed = summary["median_s"] < SUMMARY_BAR_S and summary["peak_rss_mib"] < SUMMARY_BAR_RSS_MB
    print(f"\n{'operation':44} {'median s':>9} {'min s':>7} {'peak RSS MiB':>13}")
    for r in results:
        print(f"{r['operation']:44} {r['median_s']:9.3f} {r['min_s']:7.3f} {r['peak_rss_mib']:13.1f}")
    c, o = delta_figures["concurrent_commits"], delta_figures["snapshot_open"]
    print(f"\nconcurrent commits: {c['writers']} writers x {c['commits_per_writer']} one-row units on one table: "
          f"{c['seconds']} s, {c['commits_per_s']} commits/s, all {c['rows_checked']} rows present once")
    print(f"snapshot of {o['files']} files: take_snapshot {o['take_snapshot_s']} s, open_table (footer checks) "
          f"{o['open_table_s']} s, whole process {o['process_s']} s, peak RSS {o['peak_rss_mib']} MiB")
    m = delta_figures["object_masks"]
    print(f"one object's masks ({m['rows_read']} frames of {m['mask_hw'][0]}x{m['mask_hw'][1]} RLE) from object_frames of "
          f"{m['objects']} objects ({m['table_mib']} MiB, {m['row_groups']} row groups): {m['read_ms']} ms, "
          f"Arrow memory peak {m['arrow_peak_mib']} MiB")
    print(f"\nbar: summary clips < {SUMMARY_BAR_S} s and < {SUMMARY_BAR_RSS_MB:.0f} MiB peak RSS: {'PASS' if passed else 'FAIL'}")
    report = {
        "benchmark": "manifest_scale",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "parent_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "config": {"rows": args.rows, "signals": args.signals, "unit_rows": args.unit_rows, "repeats": args.repeats,
                   "writers": args.writers, "commits": args.commits, "snapshot_files": args.snapshot_files,
                   "mask_objects": args.mask_objects},
        "dataset": built,
        "results": results,
        **delta_figures,
        "bar": {"summary_s": SUMMARY_BAR_S, "summary_rss_mib": SUMMARY_BAR_RSS_MB, "passed": passed},
    }
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
