"""Edit-pair quality on the synthetic corpus (where the truth is known) and pairs/s per core per editor.

    python -m benchmarks.edit_pairs [--videos 6] [--seed 0] [--out benchmarks/results/edit_pairs.json]

Every shot of a corpus video that shows objects is one clip, encoded as the corpus does (libx264
CRF 20) and decoded back, as the pipeline would see it. Per clip and visible object:
- removal quality: PSNR of the decoded target inside the removal's (dilated) mask against the true
  background (the plan re-rendered without objects), leaving out the few pixels where another object
  hid behind the removed one; once with the plan's moving camera (pan or zoom) and once with the
  camera held still. "revealed" rows are those whose hole was >= 99 % filled from other frames;
  the rest needed spatial inpainting for what no frame shows;
- fidelity where a local edit keeps pixels: PSNR of decoded target vs decoded source outside the
  mask (inside it for background changes), at the mask edge and past the gates' margin (4:2:0 chroma
  and transform blocks straddle the edge), on the pair as written at `PAIR_CRF`, next to what
  re-encoding the unchanged clip at `PAIR_CRF` costs on the same pixels;
- cost: process CPU seconds (all threads) to decode the source, edit, encode and write the pair, so
  pairs/s per core = pairs / CPU-seconds. Then the CPU-hours of 1.7M pairs at the ISA paper's mix.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from curation.corpus.backgrounds import removal_truth, render_range, static_camera
from curation.corpus.build import CRF as CORPUS_CRF
from curation.corpus.photos import load_photo
from curation.corpus.plan import plan_video
from curation.editors import PAIR_CRF, EditInput, get_editor, write_pair
from curation.editors.output import write_clip
from curation.stages.pairs import PAPER_MIX
from filters.pair_gates import PairGateConfig, edit_regions, evaluate_pair
from filters.pair_gates import psnr as pair_psnr
from manifests.media.decode import read_frames

LOCAL = ("removal", "addition", "recolour", "background")
EDITORS = (*LOCAL, "style", "generative")
PAIRS_TOTAL = 1_700_000


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    """PSNR (dB) over `where`, capped at 99 dB so identical pixels stay a JSON number."""
    return min(99.0, pair_psnr(a, b, where))


def _clips(plan) -> list[tuple[int, int]]:
    return [(s.pure_start, s.pure_end) for s in plan.shots
            if any(o.first == s.pure_start for o in plan.objects)]


def _through_codec(frames: np.ndarray, fps: float, crf: int, tmp: Path) -> tuple[np.ndarray, Path]:
    path = write_clip(tmp / f"clip_{time.monotonic_ns()}.mp4", frames, fps, crf)
    return read_frames(path), path


def _edit_and_write(name: str, inp: EditInput, tmp: Path, clip_path: Path, crf: int
                    ) -> tuple[object, np.ndarray, np.ndarray, float]:
    """(result, decoded source, decoded target, CPU seconds for decode + edit + write)."""
    editor = get_editor(name)
    c0 = time.process_time()
    frames = read_frames(clip_path)
    result = editor.edit(dataclasses.replace(inp, frames=frames))
    files = write_pair(result, tmp, f"{name}_{time.monotonic_ns()}", inp.fps, crf)
    cpu = time.process_time() - c0
    source = frames if files.source is None else read_frames(files.source)
    target = frames if files.target is None else read_frames(files.target)
    return result, source, target, cpu


def _objects(masks: dict[int, np.ndarray]):
    """(object id, its mask, the union of the other objects' masks) per object of a clip."""
    for oid, mask in sorted(masks.items()):
        others = np.zeros_like(mask)
        for other in set(masks) - {oid}:
            others |= masks[other]
        yield oid, mask, others


def _removal_row(plan, camera: str, start: int, end: int, oid: int, result, removed, decoded, raw) -> dict:
    """Removal quality of one object: decoded target vs the true background inside the removal mask."""
    truth, background_shows = removal_truth(plan, oid, start, end)
    scored = result.mask & background_shows
    shot = next(s for s in plan.shots if s.pure_start == start)
    return {
        "video": plan.name, "camera": camera, "camera_kind": shot.camera.kind, "frames": end - start,
        "object": oid, "mask_fraction": round(float(result.mask.mean()), 4),
        "temporal_fill_fraction": result.params["temporal_fill_fraction"],
        "scored_fraction_of_mask": round(float(scored.sum() / result.mask.sum()), 4),
        "psnr_inside_db": round(psnr(removed, truth, scored), 2),
        "corpus_codec_psnr_db": round(psnr(decoded, raw, ~result.mask), 2),  # the input's own loss
    }


def run(videos: int, seed: int, crf: int = PAIR_CRF) -> dict:
    photo_hw = lambda name: load_photo(name).shape[:2]  # noqa: E731
    removal_rows, fidelity, cpu, gates = [], defaultdict(list), defaultdict(list), defaultdict(list)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for index in range(videos):
            moving = plan_video(seed, index, False, photo_hw)
            for camera, plan in (("moving", moving), ("static", static_camera(moving))):
                for start, end in _clips(plan):
                    raw, masks = render_range(plan, start, end)
                    fps = float(plan.fps)
                    decoded, clip_path = _through_codec(raw, fps, CORPUS_CRF, tmp)
                    reencoded = _through_codec(decoded, fps, crf, tmp)[0]
                    for oid, mask, others in _objects(masks):
                        inp = EditInput(decoded, fps, mask, str(oid), "object", index * 100 + oid, others)
                        result, _, removed, sec = _edit_and_write("removal", inp, tmp, clip_path, crf)
                        removal_rows.append(_removal_row(plan, camera, start, end, oid, result, removed, decoded, raw))
                        if camera == "static":
                            continue  # cost and fidelity from the corpus's own (moving-camera) clips
                        cpu["removal"].append(sec)
                        gates["removal"].append(evaluate_pair(decoded, removed, result.mask, "inside", PairGateConfig(),
                                                              (decoded, mask)))
                        _kept(fidelity, "removal", decoded, removed, result, reencoded, decoded)
                        for name in EDITORS[1:]:
                            res, source, target, sec = _edit_and_write(name, inp, tmp, clip_path, crf)
                            cpu[name].append(sec)
                            gates[name].append(evaluate_pair(source, target, res.mask, res.region, PairGateConfig(),
                                                             (decoded, mask) if name in LOCAL else None))
                            if name in LOCAL:
                                _kept(fidelity, name, source, target, res, reencoded, decoded)
    return summarise(removal_rows, fidelity, cpu) | {"pair_crf": crf, "gate_pass_rates": _pass_rates(gates)}


def _pass_rates(gates: dict) -> dict:
    """Per editor: the fraction of pairs passing each gate (PairGateConfig defaults) and all of them."""
    out = {}
    for name, values in gates.items():
        names = sorted({g for v in values for g, x in v.items() if x.passed is not None})
        rates = {g: round(float(np.mean([bool(v[g].passed) for v in values if g in v])), 3) for g in names}
        passed_all = [all(x.passed for x in v.values() if x.passed is not None) for v in values]
        out[name] = rates | {"all": round(float(np.mean(passed_all)), 3)}
    return out


def _kept(fidelity: dict, name: str, source: np.ndarray, target: np.ndarray, result, reencoded: np.ndarray,
          clip: np.ndarray) -> None:
    """PSNR of target vs source where the edit keeps pixels: at the mask edge (margin 0) and past the
    gates' margin; beside it, what re-encoding the unchanged clip at PAIR_CRF costs over the same pixels."""
    margin = PairGateConfig().kept_margin_px
    _, kept0 = edit_regions(result.mask, result.region, result.mask.shape, 0)
    _, kept = edit_regions(result.mask, result.region, result.mask.shape, margin)
    fidelity[name].append((psnr(target, source, kept0), psnr(target, source, kept),
                           psnr(reencoded, clip, kept)))


def summarise(removal_rows: list[dict], fidelity: dict, cpu: dict) -> dict:
    def agg(rows: list[dict]) -> dict:
        v = np.array([r["psnr_inside_db"] for r in rows])
        return {"clips_objects": len(rows), "mean_db": round(float(v.mean()), 2) if len(v) else None,
                "median_db": round(float(np.median(v)), 2) if len(v) else None,
                "min_db": round(float(v.min()), 2) if len(v) else None}

    removal = {}
    for kind in ("static", "pan", "zoom"):
        rows = [r for r in removal_rows if r["camera_kind"] == kind]
        removal[kind] = agg(rows)
        removal[f"{kind} revealed"] = agg([r for r in rows if r["temporal_fill_fraction"] >= 0.99])
    speed = {name: {"pairs": len(v), "cpu_s_per_pair": round(float(np.mean(v)), 4),
                    "pairs_per_s_per_core": round(1 / float(np.mean(v)), 3)} for name, v in cpu.items()}
    cpu_s = sum(share * speed[name]["cpu_s_per_pair"] for name, share in PAPER_MIX.items())
    return {
        "machine": f"{platform.machine()} {platform.system()}, {__import__('os').cpu_count()} cores",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "corpus_crf": CORPUS_CRF,
        "removal_psnr_inside_vs_truth": removal,
        "kept_fidelity_db": {n: _fidelity_stats(np.array(v)) for n, v in fidelity.items()},
        "speed": speed,
        "paper_mix": PAPER_MIX,
        "cpu_hours_1p7m_pairs": round(cpu_s * PAIRS_TOTAL / 3600, 1),
        "removal_rows": removal_rows,
    }


def _fidelity_stats(v: np.ndarray) -> dict:
    """v: (pairs, 3) = PSNR kept at margin 0, at the gates' margin, and of the unchanged re-encode."""
    v = v[~np.isnan(v).any(axis=1)]  # a pair whose kept region is empty past the margin has no value
    return {"pairs": len(v), "mean_db_margin0": round(float(v[:, 0].mean()), 2),
            "mean_db": round(float(v[:, 1].mean()), 2), "min_db": round(float(v[:, 1].min()), 2),
            "pairs_below_40db": int((v[:, 1] < 40).sum()), "reencode_unchanged_mean_db": round(float(v[:, 2].mean()), 2),
            "margin_px": PairGateConfig().kept_margin_px}


def print_tables(res: dict) -> None:
    print(f"removal PSNR inside the mask vs the true background (pairs at CRF {res['pair_crf']}):")
    print(f"{'camera':<8}{'clips x objects':>16}{'mean dB':>10}{'median dB':>11}{'min dB':>9}")
    for cam, r in res["removal_psnr_inside_vs_truth"].items():
        print(f"{cam:<8}{r['clips_objects']:>16}{r['mean_db']!s:>10}{r['median_db']!s:>11}{r['min_db']!s:>9}")
    print("\nper editor:")
    print(f"{'editor':<12}{'pairs':>7}{'CPU s/pair':>12}{'pairs/s/core':>14}{'kept dB (edge)':>16}"
          f"{'kept dB':>9}{'min':>7}{'<40':>5}{'re-encode dB':>14}")
    for name, s in res["speed"].items():
        f = res["kept_fidelity_db"].get(name, {})
        print(f"{name:<12}{s['pairs']:>7}{s['cpu_s_per_pair']:>12}{s['pairs_per_s_per_core']:>14}"
              f"{f.get('mean_db_margin0', '-')!s:>16}{f.get('mean_db', '-')!s:>9}{f.get('min_db', '-')!s:>7}"
              f"{f.get('pairs_below_40db', '-')!s:>5}{f.get('reencode_unchanged_mean_db', '-')!s:>14}")
    print("\ngate pass rates (PairGateConfig defaults):")
    for name, rates in res["gate_pass_rates"].items():
        print(f"{name:<12}" + "  ".join(f"{g} {r:.2f}" for g, r in rates.items()))
    print(f"\n1.7M pairs at the paper's mix {res['paper_mix']}: {res['cpu_hours_1p7m_pairs']} CPU-hours")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crf", type=int, default=PAIR_CRF, help="libx264 CRF of the written pairs")
    parser.add_argument("--out", default="benchmarks/results/edit_pairs.json")
    args = parser.parse_args(argv)
    res = run(args.videos, args.seed, args.crf)
    print_tables(res)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
