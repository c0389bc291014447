"""How much of an addition's target its first frame could give: gain over copy-the-source of two oracles
that know the added object's pixels in the first frame, on a pair set's addition pairs as validation reads
them (`small`'s bucket, centre crop, the same frames).

- `first frame`: the target's first frame inside the mask there, every other pixel the source's;
- `held still`: that first-frame object pasted into every frame at its first place.

An addition's instruction names a colour, a size word and one of nine places, and its source is the removal's
fill, so a model sees less than either oracle. If even the oracles gain little, the object's path, which no
input carries, is most of the gap to the target.

    python benchmarks/model_addition_oracle.py out/pairs [--split val] [--out benchmarks/results/x.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from isa_model.config import load_config
from isa_model.data import EditPairs
from isa_model.metrics import psnr


def oracles(source: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """source, target (C, T, H, W) in [-1, 1]; mask (T, H, W) in {0, 1}. The two oracles' clips, same shape."""
    first = mask[0] > 0.5  # (H, W)
    first_frame = source.clone()
    first_frame[:, 0] = torch.where(first, target[:, 0], source[:, 0])
    held_still = torch.where(first, target[:, :1], source)  # (C, T, H, W): frame 0's object in every frame
    return {"first frame": first_frame, "held still": held_still}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("root", help="a curated pair set (jobs/configs/train_pairs.yaml)")
    p.add_argument("--split", default="val")
    p.add_argument("--config", default="small", help="the model config whose bucket and frames to read")
    p.add_argument("--out", help="write the table as JSON here")
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    pairs = EditPairs(args.root, args.split, cfg.model, seed=0, stride=cfg.data.frame_stride, train=False)
    scores: dict[str, list[float]] = {"copy": [], "first frame": [], "held still": []}
    for i, row in enumerate(pairs.rows):
        item = pairs[(0, i)] if row["edit_type"] == "addition" else None
        if item is None or item["mask"] is None:
            continue
        target = item["target"][None]  # (1, C, T, H, W)
        scores["copy"].append(float(psnr(item["source"][None], target)))
        for name, clip in oracles(item["source"], item["target"], item["mask"]).items():
            scores[name].append(float(psnr(clip[None], target)))
    if not scores["copy"]:
        print(f"error: {args.root}: no readable addition pairs in the {args.split} split", file=sys.stderr)
        return 2
    copy = float(np.mean(scores["copy"]))
    table = {name: {"psnr": float(np.mean(v)), "gain_db": float(np.mean(v)) - copy} for name, v in scores.items()}
    print(f"{len(scores['copy'])} addition pairs ({args.root}, {args.split})")
    print(f"{'clip':12s} {'PSNR':>7s} {'gain':>7s}")
    for name, row in table.items():
        print(f"{name:12s} {row['psnr']:7.2f} {row['gain_db']:+7.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"root": Path(args.root).name, "split": args.split,
                                              "pairs": len(scores["copy"]), "clips": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
