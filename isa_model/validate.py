"""Validation on the held-out split: sample every val pair (Euler + CFG), score against the target and against
the copy-the-source baseline (PSNR/SSIM overall, per edit type, inside/outside the mask), compare ISA with
dense attention for the same noise, time attention per denoising step, write previews (mp4 and PNG): the first
pairs, and the pairs whose kept region the model spoiled most, with where it changed the source.

A local pair whose edited part lies wholly outside the frames and crop validation scores (a caption or object
off the centre crop) tests nothing of its edit: there the copy is the target, often to the last bit (PSNR at
its 100 dB cap), so the mean of such a pair's dB outweighs every other pair of its type (on corpus seed 41's val,
one addition scored -62 dB and moved its type's mean by -2.2 dB). Such pairs are listed (`no_edit_in_view`) and
left out of every mean; `rescore` applies the rule to a report written before it.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from isa_model import checkpoint as ck
from isa_model import objective
from isa_model.config import Config, ConfigError
from isa_model.data import EditPairs, ResumableSampler, make_loader
from isa_model.metrics import psnr, ssim
from isa_model.model import attention
from isa_model.sample import euler_sample, load_model
from isa_model.train import snapshot_from_file
from manifests.storage import location


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def _gain(score: float | None, copy: float | None) -> float | None:
    """score - copy, or None where either mean is None (no finite values to average)."""
    return None if score is None or copy is None else score - copy


def attention_ms_per_step(cfg: Config, batch: int, device: torch.device, repeats: int = 5) -> dict[str, float]:
    """Milliseconds spent in attention in one denoising step of the model (all blocks), ISA vs dense, on random
    q, k, v of the model's shapes (full in-context sequence; CFG doubles the batch)."""
    m = cfg.model
    n = 2 * m.tokens_per_clip
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    q, k, v = (torch.randn(batch, m.heads, n, m.dim // m.heads, device=device, dtype=dtype) for _ in range(3))
    out = {}
    for mode in ("isa", "dense"):
        mcfg = type(m)(**{**m.__dict__, "attention": mode})
        attention(q, k, v, m.tokens_per_clip, mcfg)  # warm-up (compiles kernels)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(repeats):
            attention(q, k, v, m.tokens_per_clip, mcfg)
        if device.type == "cuda":
            torch.cuda.synchronize()
        out[f"{mode}_ms"] = 1000 * (time.perf_counter() - t0) / repeats * m.depth
    return out


def _frames_rgb(video: torch.Tensor) -> np.ndarray:
    """(C, T, H, W) in [-1, 1] -> (T, H, W, 3) uint8."""
    return ((video.permute(1, 2, 3, 0).float().cpu().numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)


def change_panel(source: torch.Tensor, pred: torch.Tensor, edited: torch.Tensor) -> torch.Tensor:
    """Where the prediction left the source, for a preview: |pred - source| x4 in grey on black, the region the
    pair edits (`edited`, (T, H, W) in {0, 1}) tinted red, so a change outside the red is the model's leak.
    (C, T, H, W) in [-1, 1] each, the panel likewise."""
    change = ((pred.float() - source.float()).abs().mean(0) * 4).clamp(0, 1)  # (T, H, W) in [0, 1]
    red = (change + 0.35 * edited).clamp(0, 1)
    return torch.stack([red, change, change]) * 2 - 1  # (3, T, H, W)


def write_previews(rows: list[list[torch.Tensor]], out: Path, stem: str = "preview") -> list[str]:
    """Each row's panels ((C, T, H, W) in [-1, 1]: source | target | prediction, and maybe more) side by side:
    one mp4 of all previewed pairs and one PNG (first, middle and last frame of each pair)."""
    from PIL import Image

    from manifests.media.encode import VideoWriter

    strips = [np.concatenate([_frames_rgb(x) for x in panels], axis=2) for panels in rows]
    mp4 = out / f"{stem}.mp4"
    with VideoWriter(mp4, fps=6.0) as writer:
        for strip in strips:
            for frame in strip:
                writer.write(frame)
    t = strips[0].shape[0]
    png_rows = [np.concatenate([s[i] for i in (0, t // 2, t - 1)], axis=0) for s in strips]
    Image.fromarray(np.concatenate(png_rows, axis=0)).save(out / f"{stem}.png")
    return [mp4.name, f"{stem}.png"]


def edit_in_view(row: dict[str, Any]) -> bool:
    """Whether a scored pair's edit is in view: a global edit (no mask) always, a local one where its edited part
    has a pixel in the scored frames and crop (`psnr_edited` is NaN where it has none)."""
    return "psnr_edited" not in row or bool(np.isfinite(row["psnr_edited"]))


def validate(ckpt_path: str | Path, out: str | Path, data_root: str | Path | None = None,
             wanted: Config | None = None, steps: int | None = None, guidance: float | None = None,
             max_pairs: int | None = None, previews: int = 4, seed: int = 0, weights: str = "ema",
             snapshot_file: str = "", split: str = "val", start_t: float = 1.0,
             mask_threshold: float | None = None, isa_fp8: bool = False) -> dict[str, Any]:
    """Score the checkpoint's `weights` (ema or model) on `split` (rows of `snapshot_file` when given); writes
    `validation.json` (means per edit type and overall, and every pair's own scores) and previews.
    `start_t` < 1: sample from the noised source (noise objective); `mask_threshold` overrides the config's
    `train.mask_threshold` (a blend mask's sampling cut); `isa_fp8`: the ISA model's exact scores in fp8
    (`model.isa.fp8_scores`), its dense twin as it was."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ckpt = ck.latest(Path(ckpt_path))
    if ckpt is None:
        raise ConfigError(f"{ckpt_path}: no checkpoint found")
    model, cfg = load_model(ckpt, device, wanted, weights, **({"isa": {"fp8_scores": True}} if isa_fp8 else {}))
    if isa_fp8 and cfg.model.attention != "isa":
        raise ConfigError(f"--isa-fp8 needs a model with ISA attention; {ckpt} has {cfg.model.attention!r}")
    twin, _ = load_model(ckpt, device, wanted, weights, attention="dense" if cfg.model.attention == "isa" else "isa")
    steps = objective.sampling_steps(cfg.model.objective, steps or cfg.train.sample_steps)
    guidance = cfg.train.guidance if guidance is None else guidance
    if mask_threshold is not None:  # checked as the config checks its own (TRAIN_LIMITS)
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, mask_threshold=mask_threshold))
    threshold = cfg.train.mask_threshold
    root = location(data_root or cfg.data.root or ckpt.parent.parent / "synthetic_pairs", "data root")  # or s3://
    snapshot = snapshot_from_file(root, snapshot_file) if snapshot_file else None
    dataset = EditPairs(root, split, cfg.model, seed, cfg.data.frame_stride, train=False, snapshot=snapshot)
    n = min(len(dataset), max_pairs or len(dataset))
    if n == 0:
        raise ConfigError(f"{root}: no {split} rows in edit_pairs")
    sampler = ResumableSampler(n, seed, shuffle=False, epochs=1)
    loader = make_loader(dataset, cfg.data.batch_size, cfg.data.workers, sampler)
    gen = torch.Generator().manual_seed(seed)
    per_pair: list[dict[str, Any]] = []  # every pair's scores with its id, to set beside other reports per pair
    preview_rows: list[list[torch.Tensor]] = []
    worst: list[tuple[float, int, dict[str, Any], list[torch.Tensor]]] = []  # min-heap of the largest kept losses
    skipped, sample_s = 0, 0.0
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    for batch in loader:
        skipped += batch["skipped"]
        if batch["size"] == 0:
            continue
        src, tgt = batch["source"].to(device), batch["target"].to(device)
        noise = torch.randn(src.shape, generator=gen).to(device)
        with autocast:
            t0 = time.perf_counter()
            pred = euler_sample(model, src, batch["tokens"], noise, steps, guidance, start_t=start_t,
                                mask_threshold=threshold, box=batch["box"], layout=batch["layout"])
            if device.type == "cuda":
                torch.cuda.synchronize()
            sample_s += time.perf_counter() - t0
            pred_twin = euler_sample(twin, src, batch["tokens"], noise, steps, guidance, start_t=start_t,
                                     mask_threshold=threshold, box=batch["box"], layout=batch["layout"])
        scores = {"psnr": psnr(pred, tgt), "ssim": ssim(pred, tgt), "copy_psnr": psnr(src, tgt),
                  "copy_ssim": ssim(src, tgt), "isa_vs_dense_psnr": psnr(pred, pred_twin)}
        for i, edit_type in enumerate(batch["edit_type"]):
            row = {k: float(v[i]) for k, v in scores.items()}
            mask = batch["mask"][i]
            if mask is not None:
                m = mask[None].to(device)
                row["psnr_inside"] = float(psnr(pred[i : i + 1], tgt[i : i + 1], m)[0])
                row["psnr_outside"] = float(psnr(pred[i : i + 1], tgt[i : i + 1], 1 - m)[0])
                row["copy_psnr_inside"] = float(psnr(src[i : i + 1], tgt[i : i + 1], m)[0])
                row["copy_psnr_outside"] = float(psnr(src[i : i + 1], tgt[i : i + 1], 1 - m)[0])
                kept = "inside" if batch["region"][i] == "outside" else "outside"  # the part the edit leaves
                edited = "outside" if kept == "inside" else "inside"
                for name, part in (("kept", kept), ("edited", edited)):
                    row[f"psnr_{name}"], row[f"copy_psnr_{name}"] = row[f"psnr_{part}"], row[f"copy_psnr_{part}"]
            per_pair.append({"pair_id": batch["pair_id"][i], "edit_type": edit_type, **row})
            if not edit_in_view(row):  # scored and kept per pair, never in a mean (module docstring)
                continue
            if len(preview_rows) < previews:
                preview_rows.append([src[i], tgt[i], pred[i]])
            loss = row.get("copy_psnr_kept", np.nan) - row.get("psnr_kept", np.nan)  # dB the model lost outside
            if previews and np.isfinite(loss) and (len(worst) < previews or loss > worst[0][0]):
                m = batch["mask"][i].float()  # (T, H, W)
                panels = [x.cpu() for x in (src[i], tgt[i], pred[i])]
                panels.append(change_panel(panels[0], panels[2], m if batch["region"][i] != "outside" else 1 - m))
                listed = {k: per_pair[-1][k] for k in ("pair_id", "edit_type", "psnr_kept", "copy_psnr_kept")}
                entry = (loss, len(per_pair), listed, panels)
                (heapq.heappush if len(worst) < previews else heapq.heapreplace)(worst, entry)
    report = means(per_pair)
    report.update(checkpoint=ckpt.name, weights=weights, config=cfg.name, attention=cfg.model.attention,
                  context_cache=cfg.model.context_cache, objective=cfg.model.objective,
                  blend_mask=cfg.model.blend_mask, mask_threshold=threshold, start_t=start_t, split=split,
                  isa_fp8=cfg.model.isa.fp8_scores,
                  steps=steps, guidance=guidance,
                  skipped=skipped, sample_s_per_step=sample_s / max(1, steps * len(loader)),
                  attention_per_step=attention_ms_per_step(cfg, 2 * cfg.data.batch_size, device),
                  device=torch.cuda.get_device_name() if device.type == "cuda" else "cpu")
    if preview_rows:
        report["previews"] = write_previews(preview_rows, out)
    if worst:  # the pairs whose kept region the model spoiled most, worst first, with where it changed the source
        worst.sort(key=lambda e: -e[0])
        report["worst_kept"] = {"pairs": [e[2] for e in worst],
                                "files": write_previews([e[3] for e in worst], out, "worst_kept")}
    report["per_pair"] = per_pair
    (out / "validation.json").write_text(json.dumps(report, indent=1))
    return report


def means(per_pair: list[dict[str, Any]]) -> dict[str, Any]:
    """A report's means (`summarise`), pair count and `no_edit_in_view` from its per-pair rows, the pairs with
    nothing edited in view left out."""
    per: dict[str, list[dict[str, float]]] = defaultdict(list)
    for r in per_pair:
        if edit_in_view(r):
            per[r["edit_type"]].append({k: v for k, v in r.items() if k not in ("pair_id", "edit_type")})
    return {**summarise(per), "pairs": sum(map(len, per.values())),
            "no_edit_in_view": [r["pair_id"] for r in per_pair if not edit_in_view(r)]}


def rescore(report: dict[str, Any]) -> dict[str, Any]:
    """The report with its means taken again from its own per-pair rows (`means`), for reports written before
    `edit_in_view`; every other field as it was."""
    return {**report, **means(report["per_pair"])}


def summarise(per: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """Means per edit type and overall, and the gain over copying the source."""
    by_type = {}
    for edit_type, rows in sorted(per.items()):
        keys = sorted({k for r in rows for k in r})
        by_type[edit_type] = {k: _mean([r.get(k, float("nan")) for r in rows]) for k in keys}
        by_type[edit_type]["pairs"] = len(rows)
        by_type[edit_type]["gain_db"] = _gain(by_type[edit_type]["psnr"], by_type[edit_type]["copy_psnr"])
    rows = [r for rs in per.values() for r in rs]
    names = ("psnr", "ssim", "copy_psnr", "copy_ssim", "isa_vs_dense_psnr", "psnr_kept", "copy_psnr_kept")
    overall = {k: _mean([r.get(k, float("nan")) for r in rows]) for k in names}  # kept: over the local edits
    overall["gain_db"] = _gain(overall["psnr"], overall["copy_psnr"])
    return {"overall": overall, "per_edit_type": by_type}


def _cell(value: float | None, width: int, spec: str) -> str:
    """A number of the report, or `n/a` where no finite value existed (e.g. PSNR of identical clips)."""
    return f"{'n/a' if value is None else format(value, spec):>{width}}"


def print_report(report: dict[str, Any]) -> None:
    """The per-type table; `kept` is the PSNR where a local edit leaves the source alone (model / copy)."""
    print(f"{'edit type':<12} {'pairs':>5} {'PSNR':>7} {'copy':>7} {'gain':>7} {'SSIM':>6} {'ISA/dense':>9} "
          f"{'kept':>13}")
    for name, r in [*report["per_edit_type"].items(), ("overall", {**report["overall"], "pairs": report["pairs"]})]:
        kept = (f"{_cell(r.get('psnr_kept'), 6, '.2f')}/{_cell(r.get('copy_psnr_kept'), 6, '.2f')}"
                if "psnr_kept" in r else "")
        print(f"{name:<12} {r['pairs']:>5} {_cell(r['psnr'], 7, '.2f')} {_cell(r['copy_psnr'], 7, '.2f')} "
              f"{_cell(r['gain_db'], 7, '+.2f')} {_cell(r['ssim'], 6, '.3f')} {_cell(r['isa_vs_dense_psnr'], 9, '.2f')} "
              f"{kept:>13}")
    print("gain: dB of PSNR over copying the source (0.00 = the copy); kept: PSNR where a local edit leaves the "
          "source alone, model / copy.")
    if report.get("objective") in objective.STARTS_AT_SOURCE:
        print(f"This model starts from the source (objective {report['objective']!r}): untrained, it is the copy "
              "(gain 0.00); a gain above 0 is what training added.")
    a = report["attention_per_step"]
    isa = "ISA (fp8 scores)" if report.get("isa_fp8") else "ISA"
    print(f"attention per step: {isa} {a['isa_ms']:.2f} ms, dense {a['dense_ms']:.2f} ms; "
          f"{report['skipped']} pairs skipped; {len(report.get('no_edit_in_view', []))} with nothing edited in view "
          "left out")
