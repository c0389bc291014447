"""The yield report of a dataset: how many videos became clips, usable clips, objects and edit pairs, why the
rest were rejected, how often each pair gate passed, and pairs per edit type, split and hour of source video.

Curation is the product, so its yield is what a run is judged by: `manifests report ROOT` prints this and draws
it as one PNG. Everything comes from the manifests (committed units only); nothing is decoded.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from manifests.media.atomic import atomic_output
from manifests.reader import read_table
from manifests.schema import PAIR_GATES, RANDOM_INIT
from manifests.storage import Location, ObjectPath, location

GATED = "pairs_gated/"
FAILED = "pairs_failed/"
"""Prefixes of the pairs stage's per-clip `scores` rows: how many pairs (written or dropped) ran gate X, and how
many failed it. Without them (older datasets) the gate rates come from the written pairs alone."""
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


@dataclass
class YieldReport:
    """The numbers of the report; `to_json()` is what `--json` prints."""

    videos: int = 0
    videos_ok: int = 0
    source_hours: float = 0.0  # duration of the ok videos
    clips: int = 0
    usable_clips: int = 0
    objects: int = 0
    objects_random_init: int = 0  # from untrained detectors: never used for pairs
    clips_with_objects: int = 0
    pairs: int = 0
    pairs_dropped: int = 0
    reject_reasons: dict[str, Counter[str]] = field(default_factory=dict)  # stage -> reason -> count
    gate_rates: dict[str, tuple[int, int]] = field(default_factory=dict)  # gate -> (passed, ran)
    gate_rates_from: str = "scores"  # "scores": every pair made; "edit_pairs": written pairs only
    by_type_split: dict[str, Counter[str]] = field(default_factory=dict)  # edit type -> split -> pairs

    @property
    def pairs_per_usable_clip(self) -> float:
        return self.pairs / self.usable_clips if self.usable_clips else 0.0

    @property
    def pairs_per_hour(self) -> float:
        return self.pairs / self.source_hours if self.source_hours else 0.0

    def funnel(self) -> list[tuple[str, int]]:
        return [("videos", self.videos), ("videos ok", self.videos_ok), ("clips", self.clips),
                ("usable clips", self.usable_clips), ("clips with objects", self.clips_with_objects),
                ("objects", self.objects - self.objects_random_init), ("pairs", self.pairs)]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["gate_rates"] = {g: {"passed": p, "ran": r} for g, (p, r) in self.gate_rates.items()}
        out["pairs_per_usable_clip"] = self.pairs_per_usable_clip
        out["pairs_per_hour"] = self.pairs_per_hour
        return out


def reason_key(reason: str) -> str:
    """A reject reason without its numbers ("blur 12.3 < min 40" -> "blur < min"), so equal causes count together."""
    return " ".join(_NUMBER.sub("", reason).split()) or "unknown"


def _column(root: Location, table: str, columns: list[str]) -> dict[str, list[Any]]:
    data: dict[str, list[Any]] = read_table(root, table, columns=columns).to_pydict()
    return data


def yield_report(root: str | Path | ObjectPath) -> YieldReport:
    """The report of the dataset at `root`, local or `s3://` (every table read through the committed-units
    reader)."""
    root = location(root)
    rep = YieldReport()
    videos = _column(root, "videos", ["status", "reject_reason", "duration_s"])
    rep.videos = len(videos["status"])
    rep.videos_ok = videos["status"].count("ok")
    rep.source_hours = sum(d or 0.0 for s, d in zip(videos["status"], videos["duration_s"]) if s == "ok") / 3600
    rep.reject_reasons["videos"] = Counter(reason_key(r or "") for s, r in zip(videos["status"], videos["reject_reason"])
                                           if s != "ok")
    clips = _column(root, "clips", ["clip_id", "status", "reject_reason", "uri"])
    rep.clips = len(clips["clip_id"])
    usable = {c for c, s, u in zip(clips["clip_id"], clips["status"], clips["uri"]) if s == "ok" and u}
    rep.usable_clips = len(usable)
    rep.reject_reasons["clips"] = Counter(reason_key(part) for s, r in zip(clips["status"], clips["reject_reason"])
                                          if s != "ok" for part in (r or "unknown").split("; "))
    objects = _column(root, "objects", ["clip_id", "weights_id"])
    used = [c for c, w in zip(objects["clip_id"], objects["weights_id"]) if RANDOM_INIT not in str(w).split("+")]
    rep.objects, rep.objects_random_init = len(objects["clip_id"]), len(objects["clip_id"]) - len(used)
    rep.clips_with_objects = len(set(used) & usable)
    errors = _column(root, "errors", ["error_class"])
    rep.reject_reasons["errors"] = Counter(errors["error_class"])
    pairs = _column(root, "edit_pairs", ["edit_type", "split", "gates_passed", *[f"gate_{g}" for g in PAIR_GATES]])
    rep.pairs = len(pairs["edit_type"])
    for edit_type, split in zip(pairs["edit_type"], pairs["split"]):
        rep.by_type_split.setdefault(edit_type, Counter())[split] += 1
    scores = read_table(root, "scores", columns=["signal", "value"],
                        filter=pc.starts_with(pc.field("signal"), GATED) | pc.starts_with(pc.field("signal"), FAILED)
                        | (pc.field("signal") == "pairs_dropped")).to_pydict()
    totals: Counter[str] = Counter()
    for signal, value in zip(scores["signal"], scores["value"]):
        totals[signal] += int(value or 0)
    rep.pairs_dropped = totals.pop("pairs_dropped", 0)
    if totals:
        gates = sorted({s.split("/", 1)[1] for s in totals})
        rep.gate_rates = {g: (totals[GATED + g] - totals[FAILED + g], totals[GATED + g]) for g in gates}
        rep.reject_reasons["pairs"] = Counter({g: totals[FAILED + g] for g in gates if totals[FAILED + g]})
    else:
        rep.gate_rates_from = "edit_pairs"
        for g in PAIR_GATES:
            ran = sum(v is not None for v in pairs[f"gate_{g}"])
            if ran:
                rep.gate_rates[g] = (sum(g in passed for passed in pairs["gates_passed"]), ran)
    return rep


def report_text(rep: YieldReport) -> str:
    """The report as plain text (what `manifests report` prints)."""
    lines = ["funnel:"]
    of = {"videos ok": rep.videos, "usable clips": rep.clips, "clips with objects": rep.usable_clips}
    lines += [f"  {name:<20}{n:>8}" + (f"  {100 * n / of[name]:5.1f}% of {of[name]}" if of.get(name) else "")
              for name, n in rep.funnel()]
    lines.append(f"  random-init objects (unused): {rep.objects_random_init}; pairs dropped by gates: {rep.pairs_dropped}")
    lines.append(f"  pairs per usable clip: {rep.pairs_per_usable_clip:.2f}; source video: {rep.source_hours:.3f} h; "
                 f"pairs per hour of source: {rep.pairs_per_hour:.0f}")
    lines.append("reject reasons:")
    for stage, reasons in rep.reject_reasons.items():
        for reason, n in reasons.most_common():
            lines.append(f"  {stage:<8}{n:>6}  {reason}")
    lines.append(f"gate pass rates ({'every pair made' if rep.gate_rates_from == 'scores' else 'written pairs only'}):")
    for gate, (passed, ran) in rep.gate_rates.items():
        lines.append(f"  {gate:<18}{passed:>6} / {ran:<6} {100 * passed / ran if ran else 0:6.1f}%")
    splits = sorted({s for c in rep.by_type_split.values() for s in c})
    lines.append("pairs per edit type and split:")
    lines.append(f"  {'edit type':<14}" + "".join(f"{s:>8}" for s in splits) + f"{'total':>8}")
    for edit_type, counts in sorted(rep.by_type_split.items()):
        lines.append(f"  {edit_type:<14}" + "".join(f"{counts[s]:>8}" for s in splits) + f"{sum(counts.values()):>8}")
    lines.append(f"  {len(rep.by_type_split)} edit types, {rep.pairs} pairs")
    return "\n".join(lines)


def draw_report(rep: YieldReport, png: str | Path) -> Path:
    """The report as one PNG of four panels: funnel, reject reasons, gate pass rates, pairs per type and split."""
    from matplotlib.figure import Figure  # the OO API: no pyplot state; loaded only when drawing

    fig = Figure(figsize=(13, 9), layout="constrained")
    (ax_funnel, ax_reasons), (ax_gates, ax_types) = fig.subplots(2, 2)
    names, counts = zip(*rep.funnel())
    ax_funnel.barh(names[::-1], counts[::-1], color="tab:blue")
    for y, n in enumerate(counts[::-1]):
        ax_funnel.text(n, y, f" {n}", va="center")
    ax_funnel.set_title(f"funnel: {rep.pairs_per_usable_clip:.2f} pairs per usable clip, "
                        f"{rep.pairs_per_hour:.0f} per hour of source")
    reasons = [(f"{stage}: {r}"[:48], n) for stage, c in rep.reject_reasons.items() for r, n in c.most_common(6)]
    if reasons:
        ax_reasons.barh([r for r, _ in reasons][::-1], [n for _, n in reasons][::-1], color="tab:red")
    ax_reasons.set_title("reject reasons")
    gates = list(rep.gate_rates)
    ax_gates.barh(gates[::-1], [100 * p / r if r else 0 for p, r in (rep.gate_rates[g] for g in gates)][::-1],
                  color="tab:green")
    ax_gates.set_xlim(0, 100)
    ax_gates.set_title(f"gate pass rate, % ({'every pair made' if rep.gate_rates_from == 'scores' else 'written pairs'})")
    types = sorted(rep.by_type_split)
    left = [0] * len(types)
    for split in sorted({s for c in rep.by_type_split.values() for s in c}):
        values = [rep.by_type_split[t][split] for t in types]
        ax_types.barh(types, values, left=left, label=split)
        left = [a + b for a, b in zip(left, values)]
    if types:
        ax_types.legend()
    ax_types.set_title(f"pairs per edit type and split ({rep.pairs} pairs)")
    out = Path(png)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out) as temp:
        fig.savefig(temp, dpi=80)
    return out
