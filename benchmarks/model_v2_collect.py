"""Gather the runs of benchmarks/model_v2_gpu.sh into one JSON: per run its steps, loss (mean of the last 50
steps), tokens/s and every validation report of the phase.

    python benchmarks/model_v2_collect.py RUNS PHASE OUT.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def run_summary(run: Path, phase: str) -> dict[str, Any]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()] \
        if (run / "metrics.jsonl").is_file() else []
    last = rows[-50:]
    out: dict[str, Any] = {
        "steps": rows[-1]["step"] if rows else 0,
        "loss_last50": sum(r["loss"] for r in last) / len(last) if last else None,
        "mse_last50": sum(r.get("mse", r["loss"]) for r in last) / len(last) if last else None,
        "tokens_per_s_median": sorted(r["tokens_per_s"] for r in rows)[len(rows) // 2] if rows else None,
        "validation": {},
    }
    for folder in sorted(run.glob(f"{phase}-*")):
        report = folder / "validation.json"
        if folder.is_dir() and report.is_file():
            out["validation"][folder.name.removeprefix(f"{phase}-")] = json.loads(report.read_text())
    return out


def main(argv: list[str]) -> int:
    runs, phase, dest = Path(argv[0]), argv[1], Path(argv[2])
    result = {run.name: run_summary(run, phase) for run in sorted(runs.iterdir()) if run.is_dir()}
    dest.write_text(json.dumps(result, indent=1))
    for name, r in result.items():
        for split, v in r["validation"].items():
            o = v["overall"]
            print(f"{name:<10} {split:<12} steps {r['steps']:>5} loss {r['loss_last50'] or 0:.4f} "
                  f"gain {o['gain_db'] or float('nan'):+.2f} kept {o.get('psnr_kept') or float('nan'):.2f} "
                  f"ISA/dense {o['isa_vs_dense_psnr'] or float('nan'):.2f} "
                  + " ".join(f"{t}:{p['gain_db']:+.2f}" for t, p in v["per_edit_type"].items() if p["gain_db"] is not None))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
