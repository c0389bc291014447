"""How much of an edit type's target its inputs allow: gain over copy-the-source of oracles that know part of
each pair's answer, on a pair set's pairs of one type as validation reads them (`small`'s bucket, centre crop,
the same frames). An oracle that gains little says the inputs, not the model, limit the type.

`addition`: two oracles that know the added object's pixels in the first frame.
- `first frame`: the target's first frame inside the mask there, every other pixel the source's;
- `held still`: that first-frame object pasted into every frame at its first place.
An addition's instruction names a colour, a size word and one of nine places, and its source is the removal's
fill, so a model sees less than either oracle; what they miss is the object's path, which no input carries.

`add_text`: least-squares guesses of ideal models. The instruction names the text, its kind (subtitle,
caption or sign), its place and whether it moves; the editor (curation/editors/text.py) also draws a font, a
size and, for captions and signs, a colour, none of which the instruction names. Under a squared error the best guess of each
pixel is the mean, over the draws a model cannot tell apart, of the clips they make:
- `words unknown`: the mean over every text, font, size and colour of the pair's kind (reads kind, place, motion);
- `today`: the mean over every font, size and colour (reads the instruction as it is);
- `names size, colour`: the mean over the fonts alone (an instruction that also named size and colour);
- `exact plan`: the pair's own plan drawn again on the source (only the file's encode separates it from the target).

    python benchmarks/model_oracles.py addition|add_text out/pairs [--split val] [--out benchmarks/results/x.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from curation.editors.base import EditError
from curation.editors.text import FILLS, FONTS, MIN_FONT_PX, SIZES, TEXTS, TextPlan, overlay
from isa_model.config import ModelConfig, load_config
from isa_model.data import EditPairs, frame_indices, to_bucket
from isa_model.metrics import psnr
from manifests import ManifestError
from manifests.media.decode import read_frames
from manifests.media.probe import VideoError
from manifests.storage import Root
from manifests.uris import local_file

KNOWN = {"words unknown": (), "today": ("text",), "names size, colour": ("text", "size", "fill"),
         "exact plan": ("text", "font", "size", "fill")}
"""add_text guess -> the plan fields it knows; it averages over the others."""


def addition_oracles(source: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """source, target (C, T, H, W) in [-1, 1]; mask (T, H, W) in {0, 1}. The two oracles' clips, same shape."""
    first = mask[0] > 0.5  # (H, W)
    first_frame = source.clone()
    first_frame[:, 0] = torch.where(first, target[:, 0], source[:, 0])
    held_still = torch.where(first, target[:, :1], source)  # (C, T, H, W): frame 0's object in every frame
    return {"first frame": first_frame, "held still": held_still}


def text_draws(plan: TextPlan, height: int) -> list[TextPlan]:
    """Every plan the editor could have drawn for `plan`'s kind, place and motion on a clip `height` pixels
    high: each text x font x size x colour of the kind (the plan's own text among them)."""
    texts = dict.fromkeys((plan.text, *TEXTS[plan.kind]))
    return [dataclasses.replace(plan, text=text, font=font, size=size, fill=fill,
                                font_px=max(MIN_FONT_PX, round(SIZES[size] * height)))
            for text, font, size, fill in itertools.product(texts, FONTS, SIZES, FILLS[plan.kind])]


def text_guesses(plan: TextPlan, clips: dict[TextPlan, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The least-squares guesses of KNOWN from `clips`, each draw's clip (C, T, H, W) keyed by its plan (draws
    whose text fits the frame). A guess is the mean of the clips whose plans agree with `plan` on what that
    guess knows."""
    out = {}
    for name, fields in KNOWN.items():
        same = [clip for p, clip in clips.items() if all(getattr(p, f) == getattr(plan, f) for f in fields)]
        if not same:
            raise EditError(f"no draw of {plan.text!r} agrees with its plan on {', '.join(fields)}")
        out[name] = torch.stack(same).mean(0)  # (C, T, H, W)
    return out


def addition_clips(pairs: EditPairs, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]] | None:
    """(target, {name: clip}) of row i, each (C, T, H, W) at the bucket; None for a pair that cannot be read."""
    item = pairs[(0, i)]
    if item is None or item["mask"] is None:
        return None
    return item["target"], {"copy": item["source"], **addition_oracles(item["source"], item["target"], item["mask"])}


def text_clips(root: Root, row: dict, cfg: ModelConfig, stride: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(target, {name: clip}) of an add_text row under root: the plan's draws made on the source at its own
    size, then brought to `cfg`'s bucket as validation brings the files."""
    params = json.loads(row["edit_params"])
    plan = TextPlan(**{f.name: params[f.name] for f in dataclasses.fields(TextPlan)})
    source = read_frames(local_file(root, row["source_uri"]))  # (T, H, W, 3) uint8: every frame, as drawn on
    target = read_frames(local_file(root, row["target_uri"]))
    idx = frame_indices(min(len(source), len(target)), cfg.frames, stride, 0.5)

    def bucket(clip: np.ndarray) -> torch.Tensor:  # (T, H, W, 3) uint8 -> (C, T, h, w) in [-1, 1]
        x = torch.from_numpy(clip[idx]).permute(0, 3, 1, 2).float() / 127.5 - 1  # (T, 3, H, W)
        return to_bucket(x, cfg.height, cfg.width, 0.5, 0.5).transpose(0, 1)

    draws = {}
    for draw in text_draws(plan, source.shape[1]):
        try:
            draws[draw] = bucket(overlay(source, draw)[0])
        except EditError:  # a font too wide for the frame: the editor could not have drawn it either
            continue
    return bucket(target), {"copy": bucket(source), **text_guesses(plan, draws)}


ORACLES: dict[str, Callable[[EditPairs, int], tuple[torch.Tensor, dict[str, torch.Tensor]] | None]] = {
    "addition": addition_clips,
    "add_text": lambda pairs, i: text_clips(pairs.root, pairs.rows[i], pairs.cfg, pairs.stride)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("edit_type", choices=sorted(ORACLES))
    p.add_argument("root", help="a curated pair set (jobs/configs/train_pairs.yaml); add_text needs the set at its "
                   "own resolution, not a packed copy")
    p.add_argument("--split", default="val")
    p.add_argument("--config", default="small", help="the model config whose bucket and frames to read")
    p.add_argument("--out", help="write the table as JSON here")
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    pairs = EditPairs(args.root, args.split, cfg.model, seed=0, stride=cfg.data.frame_stride, train=False)
    per_pair: list[dict[str, float | str]] = []  # to set beside validation.json's per_pair rows by pair_id
    skipped: list[str] = []
    for i, row in enumerate(pairs.rows):
        if row["edit_type"] != args.edit_type:
            continue
        try:
            found = ORACLES[args.edit_type](pairs, i)
        except (KeyError, TypeError, ValueError, EditError, VideoError, ManifestError) as exc:
            skipped.append(f"{row['pair_id']}: {exc}")
            continue
        if found is None:
            skipped.append(f"{row['pair_id']}: unreadable")
            continue
        target, clips = found
        per_pair.append({"pair_id": row["pair_id"],
                         **{name: float(psnr(clip[None], target[None])) for name, clip in clips.items()}})
    if not per_pair:
        print(f"error: {args.root}: no readable {args.edit_type} pairs in the {args.split} split"
              + (f" ({len(skipped)} skipped, first {skipped[0]})" if skipped else ""), file=sys.stderr)
        return 2
    means = {name: float(np.mean([p[name] for p in per_pair])) for name in per_pair[0] if name != "pair_id"}
    table = {name: {"psnr": m, "gain_db": m - means["copy"]} for name, m in means.items()}
    print(f"{len(per_pair)} {args.edit_type} pairs ({args.root}, {args.split}); {len(skipped)} skipped"
          + (f", first {skipped[0]}" if skipped else ""))
    print(f"{'clip':20s} {'PSNR':>7s} {'gain':>7s}")
    for name, row in table.items():
        print(f"{name:20s} {row['psnr']:7.2f} {row['gain_db']:+7.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"edit_type": args.edit_type, "root": Path(args.root).name,
                                              "split": args.split, "pairs": len(per_pair),
                                              "skipped": len(skipped), "clips": table, "per_pair": per_pair},
                                             indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
