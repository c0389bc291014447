"""`python -m jobs.curate --config FILE`: run the curation stages over a corpus (ingest, shots, extract,
signals, and the stages the config switches on: objects, clip_scores, vlm_scores, pairs).

Locally it starts an embedded Ray bound to 127.0.0.1; on a cluster it is what `ray job submit
--working-dir . -- python -m jobs.curate --config ...` runs (RAY_ADDRESS set by Ray, or --ray-address).
`--in-process` runs the same stage classes in this process without Ray. An output that already holds
manifests is refused unless `--resume` is given, which skips committed units and redoes the rest.
Exit codes: 0 done, 2 bad config/input/output (one `error: ...` line on stderr).
"""

from __future__ import annotations

import argparse
import sys

from curation.faults import FaultSpecError
from curation.job_config import ConfigError, load_config
from curation.models.weights import WeightsError
from curation.pipeline import PipelineError, run
from curation.ray_runtime import RayStartError
from manifests import ManifestError
from manifests.cli_args import OneLineParser
from manifests.render import printable


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog="python -m jobs.curate", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="YAML job config (see jobs/configs/curate.yaml)")
    parser.add_argument("--input", help="input folder (overrides the config's `input`)")
    parser.add_argument("--output", help="output root (overrides the config's `output`)")
    parser.add_argument("--resume", action="store_true", help="continue an existing output, skipping committed units")
    parser.add_argument("--in-process", action="store_true", help="run the stages in this process, without Ray")
    parser.add_argument("--ray-address", help='join this Ray cluster ("auto", "ray://host:10001") instead of a local Ray')
    parser.add_argument("--no-summary", action="store_true", help="do not print the manifest summary at the end")
    return parser.parse_args(argv)


def print_summary(root: str) -> None:
    from manifests.cli import main as manifests_main

    manifests_main(["summary", root])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load_config(args.config).with_paths(args.input, args.output)
        if args.ray_address:
            config = config.model_copy(update={"ray_address": args.ray_address})
        stats = run(config, in_process=args.in_process, resume=args.resume)
    except (ConfigError, PipelineError, ManifestError, FaultSpecError, RayStartError, WeightsError) as exc:
        print(f"error: {printable(' '.join(str(exc).split()))}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - e.g. disk full, a lost cluster: one line, committed units kept
        first = next((line for line in str(exc).splitlines() if line.strip()), "")
        print(f"error: {type(exc).__name__}: {printable(first[:300])} (committed units are kept; fix the cause "
              "and run again with --resume)", file=sys.stderr)
        return 1
    others = ", ".join(f"{stats.rows[t]} {t}" for t in stats.tables if t not in ("videos", "clips"))
    print(
        f"curate: {stats.units_done} units run, {stats.units_skipped} skipped; "
        f"{stats.rows['videos']} videos, {stats.rows['clips']} clips ({stats.clips_ok} ok), "
        f"{others} in {stats.wall_s:.1f}s"
    )
    if not args.no_summary:
        print_summary(config.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
