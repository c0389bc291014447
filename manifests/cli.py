"""`python -m manifests`: inspect, filter, chart and validate a dataset's manifests.

Human tables by default, `--json` for scripts. Exit codes: 0 ok, 1 validation issues, 2 bad input
(one `error: ...` line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pyarrow as pa

from manifests.cli_args import OneLineParser, float_in, int_in
from manifests.errors import ManifestError, first_line
from manifests.expr import parse_filter
from manifests.layout import MANIFESTS_DIR, check_table_name
from manifests.progress import wants_progress
from manifests.reader import committed_parts, open_table, scan_batches
from manifests.render import human_bytes, print_json, print_table, printable, write_json_atomically
from manifests.schema import FOREIGN_KEYS, META_VERSION_KEY, PRIMARY_KEYS, SCHEMA_VERSION, SCHEMAS, URI_COLUMNS
from manifests.snapshot import (
    default_snapshot_name,
    register_snapshot,
    registered_snapshots,
    release_snapshot,
    snapshot_name,
    take_snapshot,
)
from manifests.storage import Location, location, upload
from manifests.summary import TableSummary, summarize
from manifests.validate import validate_dataset

if TYPE_CHECKING:  # pyarrow.dataset pulls in pandas (~0.4 s): only commands that scan load it
    import pyarrow.dataset as ds

EXIT_OK, EXIT_ISSUES, EXIT_BAD_INPUT = 0, 1, 2
MAX_ROWS = 10_000_000
"""Most rows `head -n` and `filter --limit` print (their tables are built in memory)."""


def dataset_root(text: str) -> Location:
    """A local folder, or an `s3://bucket/prefix` (credentials from the standard AWS chain), holding manifests/."""
    root = location(text, "dataset root")
    if not (root / MANIFESTS_DIR).is_dir():
        raise ManifestError(f"{root}: not a dataset root (no {MANIFESTS_DIR}/ folder)")
    return root


def local_root(text: str, command: str) -> Path:
    """A dataset root for the command that rewrites folders in place (migrate)."""
    root = dataset_root(text)
    if not isinstance(root, Path):
        raise ManifestError(f"{command}: needs a local dataset root; {text} is on object storage")
    return root


def table_arg(text: str) -> str:
    check_table_name(text)
    return text


def snapshot_name_arg(text: str) -> str:
    try:
        return snapshot_name(text)
    except ManifestError as exc:  # argparse turns only its own error type into a usage line
        raise argparse.ArgumentTypeError(first_line(exc)) from None


def column_list(text: str) -> list[str] | None:
    """`--columns a,b`: the names in order, each once (a repeated name would make two fields of one name)."""
    return list(dict.fromkeys(c.strip() for c in text.split(",") if c.strip())) or None


def cmd_summary(args: argparse.Namespace) -> int:
    root = dataset_root(args.root)
    tables = [table_arg(args.table)] if args.table else list(SCHEMAS)
    summaries = [summarize(root, t) for t in tables]
    if args.json:
        print_json({"root": str(root), "tables": [s.to_json() for s in summaries]})
        return EXIT_OK
    print_table(
        ["table", "rows", "shards", "units", "bytes"],
        [[s.table, s.rows, s.shards, s.units, human_bytes(s.bytes)] for s in summaries],
    )
    for s in summaries:
        _print_summary_details(s, with_columns=bool(args.table))
    return EXIT_OK


def _print_summary_details(s: TableSummary, with_columns: bool) -> None:
    if with_columns:
        print(f"\n{s.table} columns (from Parquet footers)")
        print_table(["column", "type", "min", "max", "nulls"], [[c.name, c.type, c.min, c.max, c.nulls] for c in s.columns])
    for column, counts in s.counts.items():
        if counts:
            print(f"\n{s.table}.{column}")
            print_table(["value", "rows"], list(counts.items()))
    for title, groups in s.groups.items():
        if groups:
            print(f"\n{s.table}: {title}")
            print_table(
                ["group", "rows", "nulls", "min", "max", "mean"],
                [[k, g["rows"], g["nulls"], g["min"], g["max"], g["mean"]] for k, g in groups.items()],
            )


def cmd_schema(args: argparse.Namespace) -> int:
    root, table = dataset_root(args.root), table_arg(args.table)
    refs = {c: f"{t}.{rc}" for c, t, rc in FOREIGN_KEYS.get(table, [])}
    columns = [
        {
            "name": f.name,
            "type": str(f.type),
            "nullable": f.nullable,
            "primary_key": f.name in PRIMARY_KEYS[table],
            "references": refs.get(f.name),
            "uri": f.name in URI_COLUMNS.get(table, ()),
        }
        for f in SCHEMAS[table]
    ]
    versions: dict[str, int] = {}
    for part in committed_parts(root, table):
        version = part.metadata.metadata[META_VERSION_KEY].decode()
        versions[version] = versions.get(version, 0) + 1
    if args.json:
        print_json({"table": table, "schema_version": SCHEMA_VERSION, "columns": columns, "file_versions": versions})
        return EXIT_OK
    print(printable(f"{table} (schema version {SCHEMA_VERSION}; files: {versions or 'none'})"))
    print_table(
        ["column", "type", "nullable", "role"],
        [[c["name"], c["type"], "yes" if c["nullable"] else "no", _role(c)] for c in columns],
    )
    return EXIT_OK


def _role(column: dict[str, object]) -> str:
    roles = ["primary key"] if column["primary_key"] else []
    roles += [f"-> {column['references']}"] if column["references"] else []
    roles += ["uri"] if column["uri"] else []
    return ", ".join(roles)


def _print_rows(args: argparse.Namespace, table: str, rows: pa.Table) -> None:
    if args.json:
        print_json({"table": table, "rows": rows.to_pylist()})
        return
    print_table(rows.column_names, [list(r.values()) for r in rows.to_pylist()])
    print(f"({rows.num_rows} rows)")


def cmd_head(args: argparse.Namespace) -> int:
    root, table = dataset_root(args.root), table_arg(args.table)
    rows = _collect(open_table(root, table), table, args.columns, None, args.n)
    _print_rows(args, table, rows)
    return EXIT_OK


def cmd_filter(args: argparse.Namespace) -> int:
    root, table = dataset_root(args.root), table_arg(args.table)
    where = parse_filter(args.expr, SCHEMAS[table])
    dataset = open_table(root, table)
    if args.count:
        count = dataset.count_rows(filter=where)
        print_json({"table": table, "count": count}) if args.json else print(count)
        return EXIT_OK
    _print_rows(args, table, _collect(dataset, table, args.columns, where, args.limit))
    return EXIT_OK


def _collect(dataset: ds.Dataset, table: str, columns: list[str] | None, where: ds.Expression | None, limit: int) -> pa.Table:
    """Up to `limit` matching rows, stopping the scan as soon as they are found."""
    batches, n = [], 0
    for batch in scan_batches(dataset, table, columns, where):
        if n >= limit:
            break
        batches.append(batch.slice(0, limit - n))
        n += batches[-1].num_rows
    schema = SCHEMAS[table] if columns is None else pa.schema([SCHEMAS[table].field(c) for c in columns])
    return pa.Table.from_batches(batches, schema=schema) if batches else schema.empty_table()


def cmd_stats(args: argparse.Namespace) -> int:
    from manifests.histograms import plot_columns  # matplotlib only where charts are drawn

    root, table = dataset_root(args.root), table_arg(args.table)
    where = parse_filter(args.where, SCHEMAS[table]) if args.where else None
    suffix = f" where {args.where}" if args.where else ""
    dataset = open_table(root, table)
    columns = list(dict.fromkeys(args.columns))  # a column named twice is drawn once
    paths = plot_columns(dataset, table, columns, Path(args.out), args.bins, where, suffix, wants_progress(args.progress))
    if args.json:
        print_json({"table": table, "files": [str(p) for p in paths]})
    else:
        print("\n".join(printable(str(p)) for p in paths))
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    root = dataset_root(args.root)
    issues = validate_dataset(root, args.allow_absolute_uris, wants_progress(args.progress), args.check_files)
    if args.json:
        print_json({"root": str(root), "ok": not issues, "issues": [i.to_json() for i in issues]})
    elif issues:
        print_table(["table", "check", "rows", "problem"], [[i.table, i.check, i.count, str(i)] for i in issues])
    else:
        print(printable(f"ok: {root} is valid"))
    return EXIT_ISSUES if issues else EXIT_OK


def cmd_snapshot(args: argparse.Namespace) -> int:
    root = dataset_root(args.root)
    if args.release or args.list:
        return _registered_snapshots(args, root)
    snapshot = take_snapshot(root, versions=dict(args.version or []))
    name = None if args.no_register else (args.name or default_snapshot_name(snapshot))
    if name is not None:
        register_snapshot(snapshot, name)
    if args.out:
        write_json_atomically(Path(args.out), snapshot.to_json())
    if args.json:
        print_json({**snapshot.to_json(), "registered_as": name})
        return EXIT_OK
    registered = f"; registered as {name}: gc keeps its files until `manifests snapshot --release {name}`" if name else ""
    print(printable(f"snapshot of {root} (units at version {snapshot.units_version})"
                    f"{f' written to {args.out}' if args.out else ''}{registered}"))
    print_table(
        ["table", "version", "files", "rows"], [[t.table, t.version, len(t.files), t.rows] for t in snapshot.tables.values()]
    )
    return EXIT_OK


def _registered_snapshots(args: argparse.Namespace, root: Location) -> int:
    """`snapshot --release NAME` and `snapshot --list`: the snapshots whose files gc keeps."""
    if args.release:
        release_snapshot(root, args.release)
        if not args.json:
            print(printable(f"released snapshot {args.release}: gc may now collect the files only it kept"))
    registered = registered_snapshots(root)
    if args.json:
        print_json({"registered": {n: {"taken_at": s.taken_at, "files": sum(len(t.files) for t in s.tables.values())}
                                   for n, s in registered.items()}})
    elif args.list:
        print_table(["snapshot", "taken at", "files kept"],
                    [[n, s.taken_at, sum(len(t.files) for t in s.tables.values())] for n, s in registered.items()])
    return EXIT_OK


def table_version(text: str) -> tuple[str, int]:
    """`--version TABLE=N`: a table and one of its versions (fewer than 19 digits: Delta versions are 64-bit)."""
    table, _, version = text.partition("=")
    if not (version.isascii() and version.isdigit() and len(version) < 19):
        raise argparse.ArgumentTypeError(f"expected TABLE=N with N a table version, e.g. clips=12; got {text[:60]!r}")
    try:
        return table_arg(table), int(version)
    except ManifestError as exc:  # argparse turns only its own error type into a usage line
        raise argparse.ArgumentTypeError(first_line(exc)) from None


def cmd_migrate(args: argparse.Namespace) -> int:
    from manifests.migrate import migrate_dataset

    results = migrate_dataset(local_root(args.root, "migrate"))
    if args.json:
        print_json({"tables": [r.__dict__ for r in results]})
    else:
        print_table(["table", "units", "files", "rows", "already migrated"],
                    [[r.table, r.units, r.files, r.rows, r.skipped] for r in results])
    return EXIT_OK


def cmd_compact(args: argparse.Namespace) -> int:
    from manifests.housekeeping import compact_table, compact_units

    root = dataset_root(args.root)
    tables = [table_arg(args.table)] if args.table else list(SCHEMAS)
    results = [compact_table(root, t, args.target_mib << 20) for t in tables]
    if not args.table:
        results.append(compact_units(root, args.target_mib << 20))
    if args.json:
        print_json({"tables": [r.__dict__ for r in results]})
    else:
        print_table(["table", "files before", "files after", "rows rewritten"],
                    [[r.table, r.files_before, r.files_after, r.rows] for r in results])
    return EXIT_OK


def cmd_gc(args: argparse.Namespace) -> int:
    from manifests.housekeeping import gc_dataset

    deleted = gc_dataset(dataset_root(args.root), args.retention_hours, args.dry_run, args.allow_short_retention,
                         args.ignore_snapshots)
    if args.json:
        print_json({"dry_run": args.dry_run, "files": deleted})
    else:
        verb = "would delete" if args.dry_run else "deleted"
        print_table(["table", f"files {verb}"], [[t, len(f)] for t, f in deleted.items()])
    return EXIT_OK


def cmd_sample(args: argparse.Namespace) -> int:
    root = dataset_root(args.root)
    if args.pairs:
        return _sample_pairs(args, root)
    from manifests.contact_sheet import contact_sheet  # PyAV and matplotlib only where frames are drawn

    tiles = contact_sheet(root, args.out, 16 if args.n is None else args.n)
    masked = sum(t.mask is not None for t in tiles)
    if args.json:
        print_json({"out": args.out, "clips": [t.clip_id for t in tiles], "masks": masked})
    else:
        print(printable(f"{args.out}: {len(tiles)} clips, {masked} with masks"))
    return EXIT_OK


def _sample_pairs(args: argparse.Namespace, root: Location) -> int:
    from manifests.pair_sheet import pair_sheet  # PyAV and OpenCV only where frames are drawn

    def warn(pair_id: str, reason: str) -> None:
        print(printable(f"warning: pair {pair_id} skipped: {reason}"), file=sys.stderr)

    sheet = pair_sheet(root, args.out, 8 if args.n is None else args.n, args.seconds, on_skip=warn)
    if args.json:
        print_json({"out": str(sheet.png), "video": str(sheet.mp4), "video_frames": sheet.video_frames,
                    "pairs": [{"pair_id": r["pair_id"], "edit_type": r["edit_type"]} for r in sheet.pairs],
                    "skipped": [{"pair_id": p, "reason": r} for p, r in sheet.skipped]})
    else:
        types = sorted({r["edit_type"] for r in sheet.pairs})
        print(printable(f"{sheet.png}, {sheet.mp4}: {len(sheet.pairs)} pairs ({', '.join(types)}), "
                        f"{len(sheet.skipped)} skipped"))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from manifests.report import draw_report, report_text, yield_report  # matplotlib only where it draws

    root = dataset_root(args.root)
    report = yield_report(root)
    png: Location
    if args.out or isinstance(root, Path):
        png = draw_report(report, args.out or cast(Path, root) / "yield_report.png")
    else:  # drawn locally, then put beside the manifests as one object
        with tempfile.TemporaryDirectory() as tmp:
            png = root / "yield_report.png"
            upload(draw_report(report, Path(tmp) / png.name), png)
    if args.json:
        print_json({**report.to_json(), "png": str(png)})
    else:
        print("\n".join(printable(line) for line in [*report_text(report).splitlines(), str(png)]))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    common = OneLineParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    common.add_argument("--progress", action="store_true", help="progress bars on stderr even when it is not a TTY")
    parser = OneLineParser(prog="manifests", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.add_argument("root", help="dataset root (the folder holding manifests/)")
        p.set_defaults(handler=handler)
        return p

    p = add("summary", cmd_summary, "rows, shards, bytes and column statistics from Parquet footers")
    p.add_argument("table", nargs="?")
    p = add("schema", cmd_schema, "columns, types and roles of a table")
    p.add_argument("table")
    p = add("head", cmd_head, "first rows of a table")
    p.add_argument("table")
    p.add_argument("-n", type=int_in(0, MAX_ROWS), default=10)
    p.add_argument("--columns", type=column_list, help="comma-separated columns to show")
    p = add("filter", cmd_filter, 'rows matching an expression, e.g. \'signal == "blur" and value > 100\'')
    p.add_argument("table")
    p.add_argument("expr")
    p.add_argument("--columns", type=column_list, help="comma-separated columns to show")
    p.add_argument("--limit", type=int_in(0, MAX_ROWS), default=20)
    p.add_argument("--count", action="store_true", help="print only the number of matching rows")
    p = add("stats", cmd_stats, "histogram PNGs of columns")
    p.add_argument("table")
    p.add_argument("columns", nargs="+")
    p.add_argument("--out", required=True, help="folder for the PNGs")
    p.add_argument("--bins", type=int_in(1, 10_000), default=50)
    p.add_argument("--where", help="only rows matching this filter expression")
    p = add("validate", cmd_validate, "check types, keys, references, URIs and provenance")
    p.add_argument("--allow-absolute-uris", action="store_true")
    p.add_argument("--check-files", action="store_true", help="also check that every clip/mask/target file exists under the root")
    p = add("snapshot", cmd_snapshot, "pin table versions: the frozen file list and row counts every reader shares")
    p.add_argument("--out", help="write the snapshot JSON here (give it to open_table(..., snapshot=Snapshot.from_json(...)))")
    p.add_argument("--version", action="append", type=table_version, metavar="TABLE=N", help="pin a table at an older version")
    p.add_argument("--name", type=snapshot_name_arg, help="register the snapshot under this name (default: snap-<time>)")
    p.add_argument("--no-register", action="store_true", help="do not register it (gc may then collect its files)")
    p.add_argument("--list", action="store_true", help="list the registered snapshots instead")
    p.add_argument("--release", type=snapshot_name_arg, metavar="NAME", help="unregister snapshot NAME instead")
    add("migrate", cmd_migrate, "convert a dataset written with commit markers (before Delta Lake) into Delta tables")
    p = add("compact", cmd_compact, "rewrite small files of complete units into large ones (safe while a job appends)")
    p.add_argument("table", nargs="?")
    p.add_argument("--target-mib", type=int_in(1, 1 << 20), default=128, help="size of the files to make")
    p = add("gc", cmd_gc, "delete files no table version inside the retention window, no registered snapshot and no "
            "running writer needs (safe while a job appends)")
    p.add_argument("--retention-hours", type=float_in(0.0, 1e6), default=168.0, help="keep anything younger (default: a "
                   "week, also the floor)")
    p.add_argument("--allow-short-retention", action="store_true", help="allow a window below a week (readers of "
                   "unregistered snapshots may then fail)")
    p.add_argument("--ignore-snapshots", action="store_true", help="collect files that only registered snapshots keep")
    p.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    p = add("sample", cmd_sample, "contact sheet PNG of clip frames with object masks; with --pairs, edit pairs "
            "as source | target | mask panels in a PNG and a short mp4")
    p.add_argument("--out", required=True, help="PNG file to write (with --pairs, the .mp4 of the same name goes beside it)")
    p.add_argument("-n", type=int_in(1, 1000), help="how many clips (default 16) or pairs (default 8)")
    p.add_argument("--pairs", action="store_true", help="sample the edit_pairs table: one row per pair, every edit "
                   "type shown, pairs whose files are missing skipped with a warning")
    p.add_argument("--seconds", type=float_in(0.1, 60.0), default=2.0, help="with --pairs: seconds of each pair in the mp4")
    p = add("report", cmd_report, "yield report: videos -> clips -> usable clips -> objects -> pairs, reject reasons, "
            "gate pass rates, pairs per edit type, split and hour of source; printed and drawn as a PNG")
    p.add_argument("--out", help="PNG to write (default: <root>/yield_report.png; an object under an s3:// root)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return cast(int, args.handler(args))
    except BrokenPipeError:  # output piped into `head`: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (ManifestError, OSError, ValueError, pa.ArrowException) as exc:
        print(f"error: {printable(first_line(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
