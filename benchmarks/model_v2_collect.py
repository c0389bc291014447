"""Gather the runs of benchmarks/model_v2_gpu.sh into one JSON: per run its steps, loss (mean of the last 50
steps), tokens/s, step and loader seconds and every validation report of the phase.

    python benchmarks/model_v2_collect.py RUNS PHASE OUT.json
    python benchmarks/model_v2_collect.py --choose RUNS [PHASE [--quoted NAME]]   # prints "VARIANT THRESHOLD WEIGHTS CHECKPOINT"

`--choose` is the rule that picks settings from reports no quoted number comes from, so no val number and no
reading of the results picks them. PHASE ablation (the default) picks the quality phase's settings: among the loss
weights (runs `mw*`: the blend mask's, `ew*`: the pairs' edit weight), the variant, sampling cut and weights (EMA,
or the raw weights of reports named `*-model...`) whose overall gain is highest. PHASE quality picks the cut and
the checkpoint of the trained runs the same way, among the cuts the quality phase scored (CUTS) and its two
checkpoints (`final`, or `resumed`: the one the call resumed from, reports `*-resumed`). A run's gain is pooled
over the test split and the val split of each extra pair set (reports `<phase>-test...`, `<phase>-val-<set>...`),
each report weighted by its pairs; a variant's is the mean over its seeds. The pairs the quality table quotes never
take part, nor the fp8 scores: by default the val split of the trained-on corpus (reports `<phase>-val`,
`<phase>-val-t<cut>`, `<phase>-val-resumed`); with `--quoted held-<folder>` (model_v2_gpu.sh's HELD_OUT: the val
split of a corpus seed no run has seen, reports `<phase>-held-<folder>...`), that set, and the trained-on corpus's
val split chooses beside test. Reports named `held-*` never choose. A report's cut and weights are the ones it
records. A cut is eligible only where it keeps the issue's bar: every local edit type's PSNR outside the mask,
pooled the same way, at least KEPT_BAR (a lower cut lets more of the soft mask through, and with it the model's
error).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

KEPT_BAR = 40.0
"""dB of PSNR outside the mask that every local edit type must keep (issue 24); background's `kept` is its object."""


def run_summary(run: Path, phase: str) -> dict[str, Any]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()] \
        if (run / "metrics.jsonl").is_file() else []
    last = rows[-50:]
    out: dict[str, Any] = {
        "steps": rows[-1]["step"] if rows else 0,
        "loss_last50": sum(r["loss"] for r in last) / len(last) if last else None,
        "mse_last50": sum(r.get("mse", r["loss"]) for r in last) / len(last) if last else None,
        "tokens_per_s_median": _median([r["tokens_per_s"] for r in rows]),
        "step_s_median": _median([r["step_s"] for r in rows]),
        "data_s_median": _median([r["data_s"] for r in rows if "data_s" in r]),  # the loader's share of a step
        "validation": {},
    }
    for folder in sorted(run.glob(f"{phase}-*")):
        report = folder / "validation.json"
        if folder.is_dir() and report.is_file():
            scores = json.loads(report.read_text())
            scores.pop("per_pair", None)  # each pair's own row stays in its validation.json (runs_<phase>.tgz)
            out["validation"][folder.name.removeprefix(f"{phase}-")] = scores
    return out


def _median(values: list[float]) -> float | None:
    return sorted(values)[len(values) // 2] if values else None


_Key = tuple[str, str, str, str]  # (variant, cut, weights, checkpoint: final or resumed)
_CUT_SUFFIX = re.compile(r"-t\d+(\.\d+)?$")


def _chooses(name: str, quoted: str) -> bool:
    """Whether a report (its name without phase, cut, weights and checkpoint) takes part in the choice: test and
    the val splits, never the quoted pairs or the fp8 scores."""
    return name not in (quoted, "val-fp8") and (name in ("test", "val") or name.startswith("val-"))


def choose(runs: Path, phase: str = "ablation", quoted: str = "val") -> _Key:
    """(variant, threshold, weights, checkpoint) of the best pooled gain among the phase's `mw*` and `ew*` runs
    whose local edit types all keep KEPT_BAR outside the mask (module docstring); `quoted`: the report name of
    the pairs the quality table quotes, which never choose."""
    gain: dict[_Key, dict[str, list[float]]] = {}  # key -> run -> [sum gain x pairs, pairs]
    kept: dict[_Key, dict[str, dict[str, list[float]]]] = {}  # key -> type -> run -> same
    for report in [*runs.glob(f"mw*-s*/{phase}-*/validation.json"), *runs.glob(f"ew*-s*/{phase}-*/validation.json")]:
        run = report.parent.parent.name
        name = _CUT_SUFFIX.sub("", report.parent.name.removeprefix(f"{phase}-"))
        checkpoint = "resumed" if name.endswith("-resumed") else "final"
        name = name.removesuffix("-resumed").removesuffix("-model")
        if not _chooses(name, quoted):
            continue
        result = json.loads(report.read_text())
        if result["overall"]["gain_db"] is None or not result.get("pairs"):
            continue
        key = (run.rsplit("-s", 1)[0], f"{result['mask_threshold']:g}", result["weights"], checkpoint)
        _add(gain.setdefault(key, {}), run, result["overall"]["gain_db"], result["pairs"])
        for edit_type, per in result.get("per_edit_type", {}).items():
            if edit_type != "background" and per.get("psnr_kept") is not None:
                _add(kept.setdefault(key, {}).setdefault(edit_type, {}), run, per["psnr_kept"], per["pairs"])
    if not gain:
        raise SystemExit(f"{runs}: no {phase} reports of mw* or ew* runs to choose from")
    eligible = {key: _pooled(per_run) for key, per_run in gain.items()
                if all(_pooled(per_run) >= KEPT_BAR for per_run in kept.get(key, {}).values())}
    if not eligible:
        raise SystemExit(f"{runs}: no variant and cut keeps {KEPT_BAR} dB outside the mask on every local edit type")
    return max(eligible, key=lambda k: eligible[k])


def _add(per_run: dict[str, list[float]], run: str, value: float, pairs: int) -> None:
    acc = per_run.setdefault(run, [0.0, 0.0])
    acc[0] += value * pairs
    acc[1] += pairs


def _pooled(per_run: dict[str, list[float]]) -> float:
    """The mean over runs (seeds) of each run's pair-weighted mean."""
    return sum(total / n for total, n in per_run.values()) / len(per_run)


def _num(value: float | None) -> float:
    """A report's number, NaN where it has none (0.0 stays 0.0)."""
    return float("nan") if value is None else value


def main(argv: list[str]) -> int:
    if argv[:1] == ["--choose"]:
        p = argparse.ArgumentParser(prog="model_v2_collect.py --choose")
        p.add_argument("runs", type=Path)
        p.add_argument("phase", nargs="?", default="ablation")
        p.add_argument("--quoted", default="val", help="the report name of the pairs the quality table quotes")
        args = p.parse_args(argv[1:])
        print(*choose(args.runs, args.phase, args.quoted))
        return 0
    p = argparse.ArgumentParser(prog="model_v2_collect.py", description="gather a phase's runs into one JSON "
                                "(or --choose RUNS [PHASE] [--quoted NAME]: the settings the unquoted reports pick)")
    p.add_argument("runs", type=Path, help="benchmarks/model_v2_gpu.sh's RUNS folder")
    p.add_argument("phase", help="ablation, train or quality")
    p.add_argument("dest", type=Path, help="the JSON to write")
    args = p.parse_args(argv)
    runs, phase, dest = args.runs, args.phase, args.dest
    if not runs.is_dir():
        p.error(f"{runs}: no such folder of runs")
    result = {run.name: run_summary(run, phase) for run in sorted(runs.iterdir()) if run.is_dir()}
    dest.write_text(json.dumps(result, indent=1))
    for name, r in result.items():
        for split, v in r["validation"].items():
            o = v["overall"]
            scored = v.get("checkpoint") or f"steps {r['steps']}"  # a -resumed report scores an earlier checkpoint
            print(f"{name:<10} {split:<12} {scored:>12} loss {_num(r['loss_last50']):.4f} "
                  f"gain {_num(o['gain_db']):+.2f} kept {_num(o.get('psnr_kept')):.2f} "
                  f"ISA/dense {_num(o['isa_vs_dense_psnr']):.2f} "
                  + " ".join(f"{t}:{p['gain_db']:+.2f}" for t, p in v["per_edit_type"].items() if p["gain_db"] is not None))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
