"""Edit-pair yield on corpus seeds, tuned and unseen side by side (issue 22): the demo job on a fresh corpus
per seed, then against the corpus's ground truth

- proposer tracks: precision (share of tracks following one true object at mean IoU >= 0.5 on the frames the
  objects stage sampled), recall (share of true objects in usable clips some such track follows), mean IoU of
  the true tracks;
- object gates: for every track, the gates its pairs would meet (on the clip's frames and the track's mask at
  the clip's size, as the pairs stage computes them): how many false tracks each gate rejects and how many
  true ones it keeps;
- yield: usable clips, pairs, pairs per usable clip, edit types; local edits' PSNR outside the mask measured on
  the written files (bar >= 40 dB); `manifests validate` issues.

- with --real, the real clip the transnetv2 wheel ships (no object truth): proposer tracks per usable clip
  and what the gates did to its pairs.

    python benchmarks/pair_yield.py [--seeds 0 1 2 11 12] [--videos 8] [--real] [--config jobs/configs/demo.yaml]
        [--work DIR] [--out benchmarks/results/pair_yield.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curation.corpus import build_corpus, load_masks  # noqa: E402
from curation.editors import read_mask_file  # noqa: E402
from curation.pair_rows import dense_track  # noqa: E402
from curation.stages.pairs import PairsConfig, PairsStage, is_random_init  # noqa: E402
from filters.masks import mask_iou  # noqa: E402
from filters.pair_gates import PairGateConfig, edit_regions, object_gates, psnr  # noqa: E402
from manifests import read_table, validate_dataset  # noqa: E402
from manifests.media.decode import read_frames  # noqa: E402
from manifests.media.probe import probe  # noqa: E402
from manifests.report import yield_report  # noqa: E402
from manifests.rle import rle_decode  # noqa: E402

TUNED = (0, 1, 2)
TRUE_IOU = 0.5
BARS = {"edit_types": 6, "kept_psnr_db": 40.0, "pairs_per_usable_clip": 1.5}
GATES = ("mask_area", "mask_iou", "connected", "area_cv", "boundary_edge")


def curate(corpus: Path, out: Path, config: Path) -> float:
    """The demo job on `corpus` (a local Ray, as `make demo` runs it); its wall seconds."""
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "jobs.curate", "--config", str(config), "--input", str(corpus),
                    "--output", str(out), "--no-summary"], cwd=REPO, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _rows(root: Path, table: str) -> list[dict[str, Any]]:
    return read_table(root, table).to_pylist()


def track_iou(track: dict[int, np.ndarray], truth: dict[int, np.ndarray]) -> float:
    """Mean IoU of a track with one true object over the track's sampled frames (0 where the object is absent)."""
    return float(np.mean([mask_iou(m, truth[f]) if f in truth else 0.0 for f, m in track.items()]))


def evaluate_tracks(root: Path, cfg: PairGateConfig) -> dict[str, Any]:
    """Every used track labelled true or false against the truth, with its object-gate verdicts."""
    videos = {v["video_id"]: v for v in _rows(root, "videos")}
    clips = {c["clip_id"]: c for c in _rows(root, "clips") if c["status"] == "ok" and c["uri"]}
    per_frame: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in _rows(root, "object_frames"):
        per_frame[row["object_id"]].append(row)
    objects = [o for o in _rows(root, "objects") if o["clip_id"] in clips and not is_random_init(o["weights_id"])]
    stage = PairsStage(PairsConfig())
    truth_cache: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
    tracks, found = [], set()
    true_objects = 0
    by_clip = defaultdict(list)
    for o in objects:
        by_clip[o["clip_id"]].append(o)
    for clip_id, clip in clips.items():
        uri = videos[clip["video_id"]]["uri"]
        if uri not in truth_cache:
            try:
                truth_cache[uri] = load_masks(uri)
            except Exception:  # noqa: BLE001 - a video without ground truth (the real clip) is not scored
                truth_cache[uri] = {}
        masks = truth_cache[uri]
        if not masks:
            continue
        start, end = clip["start_frame"], clip["end_frame"]
        truth = {oid: {int(f) - start: m for f, m in zip(fr, mm) if start <= f < end} for oid, (fr, mm) in masks.items()}
        truth = {oid: t for oid, t in truth.items() if t}
        true_objects += len(truth)
        if not by_clip[clip_id]:
            continue
        path = root / clip["uri"]
        frames = read_frames(path, list(range(min(probe(path).frames, stage.config.max_frames))))
        t, h, w = frames.shape[:3]
        th, tw = next(iter(masks.values()))[1].shape[1:]
        for o in by_clip[clip_id]:
            rows = sorted(per_frame[o["object_id"]], key=lambda r: r["frame_index"])
            sampled = {r["frame_index"]: _at(rle_decode(r["mask_rle"], r["mask_height"], r["mask_width"]), th, tw)
                       for r in rows if r["mask_rle"]}
            if not sampled:
                continue
            ious = {oid: track_iou(sampled, tr) for oid, tr in truth.items()}
            best = max(ious, key=lambda k: ious[k]) if ious else None
            iou = ious[best] if best is not None else 0.0
            if iou >= TRUE_IOU:
                found.add((clip_id, best))
            mask = stage.object_mask(o, rows, root, t, h, w)
            gates = object_gates(frames, mask, cfg)
            tracks.append({"object_id": o["object_id"], "true": iou >= TRUE_IOU, "iou": iou,
                           **{g: bool(v.passed) for g, v in gates.items()},
                           **{f"{g}_value": v.value for g, v in gates.items()}})
    true = [tr for tr in tracks if tr["true"]]
    false = [tr for tr in tracks if not tr["true"]]
    per_gate = {}
    for gate in (*GATES, "all"):
        ok = (lambda tr: all(tr[g] for g in GATES)) if gate == "all" else (lambda tr, g=gate: tr[g])
        per_gate[gate] = {"false_rejected": sum(not ok(tr) for tr in false), "true_kept": sum(ok(tr) for tr in true)}
    return {"tracks": len(tracks), "true_tracks": len(true), "false_tracks": len(false),
            "precision": len(true) / len(tracks) if tracks else None,
            "recall": len(found) / true_objects if true_objects else None, "true_objects": true_objects,
            "true_track_iou": float(np.mean([tr["iou"] for tr in true])) if true else None,
            "gates": per_gate, "track_values": tracks}


def _at(mask: np.ndarray, h: int, w: int) -> np.ndarray:
    return dense_track([0], [mask], 1, h, w)[0]


def kept_psnr(root: Path) -> tuple[list[float], Counter[int | None]]:
    """PSNR outside the mask (the gates' kept region) of every written local edit, from its files; and how
    many were written at each CRF (the writer lowers it until the kept region holds 40 dB)."""
    margin = PairGateConfig().kept_margin_px
    out, crfs = [], Counter[int | None]()
    for r in _rows(root, "edit_pairs"):
        params = json.loads(r["edit_params"] or "{}")
        region = params.get("region")
        if r["mask_uri"] is None or region == "global":
            continue
        crfs[params.get("crf")] += 1
        source, target = read_frames(root / r["source_uri"]), read_frames(root / r["target_uri"])
        mask = read_mask_file(root / r["mask_uri"])
        n = min(len(source), len(target), len(mask))
        _, kept = edit_regions(mask[:n], region, mask[:n].shape, margin)
        out.append(psnr(source[:n], target[:n], kept))
    return out, crfs


def run_seed(seed: int, videos: int, config: Path, cfg: PairGateConfig, work: Path | None) -> dict[str, Any]:
    """One seed: corpus, demo job, then every measure. With `work`, the corpus and dataset stay in
    work/seed<N> and a later run reuses them (to tune the gates without curating again)."""
    with tempfile.TemporaryDirectory(prefix="pair_yield_") as tmp:
        base = work / f"seed{seed}" if work else Path(tmp)
        corpus, root = base / "corpus", base / "dataset"
        wall = None
        if not (root / "manifests").is_dir():
            build_corpus(corpus, seed=seed, videos=videos, with_real=False)
            wall = curate(corpus, root, config)
        rep = yield_report(root)
        kept, crfs = kept_psnr(root)
        issues = validate_dataset(root)
        tracks = evaluate_tracks(root, cfg)
    types = {t: sum(c.values()) for t, c in rep.by_type_split.items()}
    return {"seed": seed, "tuned": seed in TUNED, "curate_wall_s": wall, **{k: v for k, v in tracks.items()},
            "usable_clips": rep.usable_clips, "pairs": rep.pairs, "pairs_dropped": rep.pairs_dropped,
            "pairs_per_usable_clip": rep.pairs_per_usable_clip, "edit_types": len(types), "pairs_by_type": types,
            "gate_rates": {g: list(v) for g, v in rep.gate_rates.items()},
            "local_pairs": len(kept), "kept_psnr_min_db": min(kept) if kept else None,
            "local_pairs_ge_40db": sum(v >= BARS["kept_psnr_db"] for v in kept),
            "local_pairs_by_crf": {str(k): v for k, v in sorted(crfs.items(), key=lambda kv: -1 if kv[0] is None else kv[0])},
            "validate_issues": [f"{i.table}: {i.check}" for i in issues]}


def run_real(config: Path, work: Path | None) -> dict[str, Any]:
    """The real clip the transnetv2 wheel ships (no object truth): proposer tracks per usable clip, and what the
    gates did to the pairs made from them."""
    with tempfile.TemporaryDirectory(prefix="pair_yield_") as tmp:
        base = work / "real" if work else Path(tmp)
        corpus, root = base / "corpus", base / "dataset"
        if not (root / "manifests").is_dir():
            build_corpus(corpus, videos=0, with_real=True)
            curate(corpus, root, config)
        rep = yield_report(root)
        objects = [o for o in _rows(root, "objects") if not is_random_init(o["weights_id"])]
    per_clip = Counter(o["clip_id"] for o in objects)
    return {"usable_clips": rep.usable_clips, "tracks": len(objects),
            "tracks_per_usable_clip": len(objects) / rep.usable_clips if rep.usable_clips else None,
            "max_tracks_in_a_clip": max(per_clip.values(), default=0), "pairs": rep.pairs,
            "pairs_dropped": rep.pairs_dropped, "gate_rates": {g: list(v) for g, v in rep.gate_rates.items()},
            "pairs_by_type": {t: sum(c.values()) for t, c in rep.by_type_split.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 11, 12])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--config", type=Path, default=REPO / "jobs" / "configs" / "demo.yaml")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "pair_yield.json")
    parser.add_argument("--work", type=Path, help="keep each seed's corpus and dataset here; reuse them if present")
    parser.add_argument("--real", action="store_true", help="also the real clip of the transnetv2 wheel")
    args = parser.parse_args(argv)
    cfg = PairsConfig().gate_config
    results = [run_seed(seed, args.videos, args.config, cfg, args.work) for seed in args.seeds]
    real = run_real(args.config, args.work) if args.real else None
    print(f"{'seed':>5} {'tracks':>6} {'prec':>5} {'recall':>6} {'IoU':>5} {'usable':>6} {'pairs':>5} {'/clip':>5} "
          f"{'types':>5} {'kept dB min':>11} {'>=40dB':>7} {'validate':>8}")
    for r in results:
        fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
        print(f"{r['seed']:>4}{'*' if r['tuned'] else ' '} {r['tracks']:>6} {fmt(r['precision'], '5.2f')} "
              f"{fmt(r['recall'], '6.2f')} {fmt(r['true_track_iou'], '5.2f')} {r['usable_clips']:>6} {r['pairs']:>5} "
              f"{r['pairs_per_usable_clip']:5.2f} {r['edit_types']:>5} {fmt(r['kept_psnr_min_db'], '11.1f')} "
              f"{r['local_pairs_ge_40db']:>3}/{r['local_pairs']:<3} {len(r['validate_issues']):>8}")
    print("(* tuned seed)\nobject gates: false tracks rejected / true tracks kept")
    print(f"{'seed':>5} " + " ".join(f"{g:>14}" for g in (*GATES, "all")))
    for r in results:
        cells = [f"{r['gates'][g]['false_rejected']:>3}/{r['false_tracks']:<3} {r['gates'][g]['true_kept']:>3}/"
                 f"{r['true_tracks']:<3}" for g in (*GATES, "all")]
        print(f"{r['seed']:>4}{'*' if r['tuned'] else ' '} " + " ".join(f"{c:>14}" for c in cells))
    if real is not None:
        print(f"real clip: {real['tracks']} proposer tracks on {real['usable_clips']} usable clips "
              f"({real['tracks_per_usable_clip'] or 0:.1f} per clip, at most {real['max_tracks_in_a_clip']}); "
              f"{real['pairs']} pairs written, {real['pairs_dropped']} dropped; gate passes "
              + ", ".join(f"{g} {p}/{r}" for g, (p, r) in real["gate_rates"].items()))
    report = {"benchmark": "pair_yield", "real_clip": real, "bars": BARS, "videos": args.videos, "config": str(args.config.name),
              "machine": f"{platform.machine()} {os.cpu_count()} cpu", "date": datetime.date.today().isoformat(),
              "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
