"""How much of an edit type's target its inputs allow: gain over copy-the-source of oracles that know part of
each pair's answer, on a pair set's pairs of one type as validation reads them (`small`'s bucket, centre crop,
the same frames). An oracle that gains little says the inputs, not the model, limit the type. Beside each
clip's PSNR and gain over the copy, its PSNR in the kept region: outside every pixel the edit touched, as
validation marks them (isa_model.data.touched).

Each clip is made on the whole frame scaled to cover the bucket (where the editor drew and the instruction
names places), then cropped as validation crops it. A guess that averages draws is also shown
- `..., cut C`: the guess where at least C of its draws change a pixel, the source elsewhere, as the blend
  mask's cut (`train.mask_threshold`) keeps a pixel the model is unsure of;
- `..., random draws`: the change it makes averaged over every crop (and, for addition, every first frame)
  training may draw (`data.crop random`), added to the source: a model cannot tell where its sample lies in the
  clip, so this is what it learns to paint. add_text's texts mostly stand still, so its first frames are not
  averaged.

`addition`: two oracles that know the added object's pixels in the first frame.
- `first frame`: the target's first frame inside the mask there, every other pixel the source's;
- `held still`: that first-frame object pasted into every frame at its first place.
And least-squares guesses that know the object's mean colour and area (an instruction names a colour word and a
size word, so these know more) and paint a disc of that colour along a straight path: the mean, over paths an
instruction cannot tell apart, of the clips they make (a pixel's share of paths whose disc covers it blends the
colour over the source):
- `flat, true shape`: the object's own pixels in every frame, in its mean colour (path and shape known);
- `disc, exact path`: the disc from the object's first seen centre to its last;
- `named place`: paths whose midpoint lies in the place of the clip's mean centre, start and end otherwise
  uniform over the frame (an instruction naming one place, as they did before naming paths, on nine: `--grid 3`; on the
  whole-percent places of 1.5 few draws hit so small a place, and the guess is their mean);
- `named path`: start and end uniform in the places the object is first and last seen (what instructions name);
- `named path, its words`: the same paths in the colour and size the instruction's words tell: the mean colour of
  the objects its colour word names and the mean area of those its size word names, over the addition pairs of
  train splits (`--prior-from`, repeatable, default the set's own). What a model that reads the instruction can
  know; the guesses above know each object's own colour and area.
- `named box, its words`: the same paths, painting the box and outline the instruction names (pairs stage 1.5:
  "oval object, 12% wide and 20% tall"): the mean template of the train objects of that outline word (each
  frame's pixels in its box), stretched to the named box, in the colour word's colour (the box of the size word's
  disc for an instruction that names no box).
Places and paths are measured as the instruction measures them, on the whole clip (curation/editors/instructions.py;
PLACE_EDGES, `--grid N` for N x N); a sample's frames lie on the path where they lie in the clip.

`add_text`: least-squares guesses of ideal models. The editor (curation/editors/text.py) draws a text, its kind
(subtitle, caption or sign), place and motion, a font, a size and, for captions and signs, a colour. Up to pairs
stage 1.2 the instruction named the first four; since 1.3 it names them all. Under a squared error the best guess
of each pixel is the mean, over the draws a model cannot tell apart, of the clips they make:
- `words unknown`: the mean over every text, font, size and colour of the pair's kind (reads kind, place, motion);
- `the text`: the mean over every font, size and colour (reads an instruction of pairs stage 1.2);
- `names size, colour`: the mean over the fonts alone;
- `exact plan`: the pair's own plan drawn again on the source (reads an instruction of 1.3; only the file's encode
  separates it from the target).

    python benchmarks/model_oracles.py addition|add_text out/pairs [--split val] [--grid N] [--cut C]
        [--prior-from out/other_pairs ...] [--out benchmarks/results/x.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repository's packages

from benchmarks.model_oracle_addition import (
    Guess,
    NamedPath,
    WordPrior,
    added_object,
    addition_guesses,
    addition_oracles,
    instruction_words,
    named_path,
    path_times,
)
from curation.editors.base import EditError
from curation.editors.instructions import PLACE_EDGES
from curation.editors.text import FILLS, FONTS, MIN_FONT_PX, SIZES, TEXTS, TextPlan, overlay
from isa_model.config import ModelConfig, load_config
from isa_model.data import (
    EditPairs,
    cover_size,
    crop_offset,
    frame_indices,
    frame_starts,
    frame_window,
    to_bucket,
    touched,
)
from isa_model.metrics import psnr
from isa_model.objective import change_mask
from manifests import ManifestError
from manifests.media.decode import read_frames
from manifests.media.masks import open_mask_file
from manifests.media.probe import VideoError
from manifests.storage import Root
from manifests.uris import local_file

KNOWN = {"words unknown": (), "the text": ("text",), "names size, colour": ("text", "size", "fill"),
         "exact plan": ("text", "font", "size", "fill")}
"""add_text guess -> the plan fields it knows; it averages over the others."""


def cut_guess(guess: torch.Tensor, source: torch.Tensor, share: torch.Tensor, cut: float) -> torch.Tensor:
    """The guess where at least `cut` of its draws change a pixel ((T, H, W) share), the source elsewhere: what
    the blend mask's cut keeps of a guess whose mask learnt that share."""
    return torch.where(share >= cut, guess, source)


def text_draws(plan: TextPlan, height: int) -> list[TextPlan]:
    """Every plan the editor could have drawn for `plan`'s kind, place and motion on a clip `height` pixels
    high: each text x font x size x colour of the kind (the plan's own text among them)."""
    texts = dict.fromkeys((plan.text, *TEXTS[plan.kind]))
    return [dataclasses.replace(plan, text=text, font=font, size=size, fill=fill,
                                font_px=max(MIN_FONT_PX, round(SIZES[size] * height)))
            for text, font, size, fill in itertools.product(texts, FONTS, SIZES, FILLS[plan.kind])]


def text_guesses(plan: TextPlan, clips: dict[TextPlan, torch.Tensor], source: torch.Tensor) -> dict[str, Guess]:
    """The least-squares guesses of KNOWN from `clips`, each draw's clip (C, T, H, W) keyed by its plan (draws
    whose text fits the frame). A guess is the mean of the clips whose plans agree with `plan` on what that
    guess knows."""
    out = {}
    for name, fields in KNOWN.items():
        same = [clip for p, clip in clips.items() if all(getattr(p, f) == getattr(plan, f) for f in fields)]
        if not same:
            raise EditError(f"no draw of {plan.text!r} agrees with its plan on {', '.join(fields)}")
        draws = torch.stack(same)  # (K, C, T, H, W)
        out[name] = draws.mean(0), change_mask(source.expand_as(draws), draws)[:, 0].mean(0)
    return out


class Views(NamedTuple):
    """A pair as validation scores it, at cfg's bucket: its target, each oracle's or guess's clip, and its kept
    region (1 where the edit touched nothing)."""

    target: torch.Tensor  # (C, T, h, w)
    clips: dict[str, torch.Tensor]  # name -> (C, T, h, w)
    kept: torch.Tensor  # (T, h, w) in {0, 1}


def crop_views(source: torch.Tensor, target: torch.Tensor, edit_mask: torch.Tensor, exact: dict[str, torch.Tensor],
               drawn: dict[str, Guess], cfg: ModelConfig, cut: float, trained: dict[str, Guess] | None = None) -> Views:
    """The Views at cfg's bucket, from clips (C, T, H, W) and the pixels the edit touched (T, H, W) of the whole
    frame: validation's middle crop of each; of each drawn guess also its cut, its `random draws` view and that
    cut. Training crops each sample anywhere in the frame (data.crop random), so a model, which cannot tell where
    its crop lies, learns the change averaged over every crop: that view adds that average, taken over every
    offset, to the source. `trained` replaces a drawn guess in that view by one already averaged over the frames
    training reads."""
    frame = tuple(source.shape[-2:])
    middle = crop_offset(frame, cfg.height, cfg.width, 0.5, 0.5)
    offsets = list(itertools.product(range(frame[0] - cfg.height + 1), range(frame[1] - cfg.width + 1)))

    def crop(x: torch.Tensor, at: tuple[int, int] = middle) -> torch.Tensor:
        return x[..., at[0] : at[0] + cfg.height, at[1] : at[1] + cfg.width]

    copy = crop(source)
    out = {"copy": copy, **{name: crop(clip) for name, clip in exact.items()}}
    for name, (clip, share) in drawn.items():
        out[name] = crop(clip)
        out[f"{name}, cut {cut:g}"] = cut_guess(crop(clip), copy, crop(share), cut)
        clip, share = (trained or {}).get(name, (clip, share))
        blind = copy + torch.stack([crop(clip - source, at) for at in offsets]).mean(0)  # (C, T, h, w)
        blind_share = torch.stack([crop(share, at) for at in offsets]).mean(0)  # (T, h, w)
        out[f"{name}, random draws"] = blind
        out[f"{name}, random draws, cut {cut:g}"] = cut_guess(blind, copy, blind_share, cut)
    return Views(crop(target), out, 1 - crop(edit_mask))


def whole_frame(frames: np.ndarray, idx: list[int], cfg: ModelConfig) -> torch.Tensor:
    """Frames `idx` of a (T, H0, W0, 3) uint8 clip, or of a (T, H0, W0) bool mask, scaled as validation scales them
    to cover cfg's bucket but not cropped: (C, T, H, W) in [-1, 1], or (T, H, W) in [0, 1]."""
    x = torch.from_numpy(frames[idx])
    x = x.float()[:, None] if x.dim() == 3 else x.permute(0, 3, 1, 2).float() / 127.5 - 1  # (T, C, H0, W0)
    h, w = cover_size(x.shape[-2], x.shape[-1], cfg.height, cfg.width)
    out = to_bucket(x, h, w, 0.5, 0.5).transpose(0, 1)  # (C, T, H, W): the whole scaled frame
    return out[0] if frames.ndim == 3 else out


def edited(mask: np.ndarray, idx: list[int], cfg: ModelConfig) -> torch.Tensor:
    """Frames `idx` of a (T, H0, W0) bool mask scaled to cover cfg's bucket, every pixel the edit touched
    (isa_model.data.touched, the rule validation and the packed copies share)."""
    m = torch.from_numpy(mask[idx])
    return touched(m, cover_size(m.shape[-2], m.shape[-1], cfg.height, cfg.width)).float()  # (T, H, W)


@dataclasses.dataclass(frozen=True)
class AdditionClip:
    """An addition row's frames as validation reads them, on the whole scaled frame (whole_frame)."""

    source: torch.Tensor  # (C, T, H, W)
    target: torch.Tensor  # (C, T, H, W)
    mask: torch.Tensor  # (T, H, W) in [0, 1], scaled as validation scales a clip
    edited: torch.Tensor  # (T, H, W) in {0, 1}: the pixels the edit touched, as the device's copies mark them
    idx: list[int]  # the clip frames read
    available: int  # the clip's frames
    named: NamedPath  # measured on the whole clip at its own size, as the instruction was


def read_mask(root: Root, row: dict) -> np.ndarray:
    """A row's mask file as a (T, H, W) bool array, the editor's frames; EditError without one."""
    if not row.get("mask_uri"):
        raise EditError("no mask file")
    masks = open_mask_file(local_file(root, row["mask_uri"]))
    return np.stack([masks.frame(t) for t in range(masks.shape[0])])


def read_addition(root: Root, row: dict, cfg: ModelConfig, stride: int) -> AdditionClip:
    """An addition row under root at cfg's bucket; EditError without a mask file or an object in two frames."""
    mask = read_mask(root, row)
    source = read_frames(local_file(root, row["source_uri"]))  # (T, H, W, 3) uint8
    target = read_frames(local_file(root, row["target_uri"]))
    available = min(len(source), len(target))
    idx = frame_indices(available, cfg.frames, stride, 0.5)
    src, tgt, m = (whole_frame(x, idx, cfg) for x in (source, target, mask))
    return AdditionClip(src, tgt, m, edited(mask, idx, cfg), idx, available, named_path(mask))


def word_prior(taught: list[EditPairs]) -> WordPrior:
    """WordPrior.fit over the addition rows of the `taught` splits whose object can be read."""
    objects = []
    for pairs in taught:
        for row in pairs.rows:
            if row["edit_type"] != "addition":
                continue
            try:
                clip = read_addition(pairs.root, row, pairs.cfg, pairs.stride)
                objects.append((instruction_words(row["instruction"]), added_object(clip.source, clip.target, clip.mask)))
            except (KeyError, TypeError, ValueError, EditError, VideoError, ManifestError):
                continue
    if not objects:
        raise EditError(f"{', '.join(str(p.root) for p in taught)}: no readable addition pairs to learn the words' "
                        "colours and sizes from")
    return WordPrior.fit(objects)


def addition_clips(root: Root, row: dict, cfg: ModelConfig, stride: int, edges: tuple[float, ...], cut: float,
                   prior: WordPrior | None = None) -> Views:
    """The Views of an addition row under root at cfg's bucket. The guesses' paths are drawn from
    a generator seeded by the pair's id, so a pair scores the same in any set."""
    clip = read_addition(root, row, cfg, stride)
    named = clip.named
    windows = [frame_window(clip.available, cfg.frames, stride, s)
               for s in range(frame_starts(clip.available, cfg.frames, stride))]
    gen = torch.Generator().manual_seed(int(row["pair_id"], 16) % 2**63)
    worded = boxed = None
    if prior is not None:
        words = instruction_words(row["instruction"])
        worded = prior.of(words)
        height, width = clip.source.shape[-2:]
        box = words.box or (2 * worded[1] / width, 2 * worded[1] / height)  # no box named: the size word's disc's
        boxed = prior.outline(words), box
    exact, drawn, trained = addition_guesses(clip.source, clip.target, clip.mask, named,
                                             path_times(clip.idx, named.first, named.last), edges, gen,
                                             [path_times(w, named.first, named.last) for w in windows],
                                             worded=worded, boxed=boxed)
    return crop_views(clip.source, clip.target, clip.edited, {**addition_oracles(clip.source, clip.target, clip.mask),
                                                           **exact}, drawn, cfg, cut, trained)


def text_clips(root: Root, row: dict, cfg: ModelConfig, stride: int, cut: float) -> Views:
    """The Views of an add_text row under root: the plan's draws made on the source at its own size, then
    brought to `cfg`'s bucket as validation brings the files."""
    params = json.loads(row["edit_params"])
    plan = TextPlan(**{f.name: params[f.name] for f in dataclasses.fields(TextPlan)})
    source = read_frames(local_file(root, row["source_uri"]))  # (T, H, W, 3) uint8: every frame, as drawn on
    target = read_frames(local_file(root, row["target_uri"]))
    idx = frame_indices(min(len(source), len(target)), cfg.frames, stride, 0.5)
    draws = {}
    for draw in text_draws(plan, source.shape[1]):
        try:
            draws[draw] = whole_frame(overlay(source, draw)[0], idx, cfg)
        except EditError:  # a font too wide for the frame: the editor could not have drawn it either
            continue
    src = whole_frame(source, idx, cfg)
    return crop_views(src, whole_frame(target, idx, cfg), edited(read_mask(root, row), idx, cfg), {},
                      text_guesses(plan, draws, src), cfg, cut)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("edit_type", choices=["add_text", "addition"])
    p.add_argument("root", help="a curated pair set (jobs/configs/train_pairs.yaml); add_text needs the set at its "
                   "own resolution, not a packed copy")
    p.add_argument("--split", default="val")
    p.add_argument("--config", default="small", help="the model config whose bucket and frames to read")
    p.add_argument("--grid", type=int, help="addition: places on an N x N grid (default: the instruction's)")
    p.add_argument("--cut", type=float, help="the guesses' cut (default: the config's train.mask_threshold)")
    p.add_argument("--prior-from", action="append", help="addition: a pair set whose train split teaches the words' "
                   "colours and sizes (repeat for several; default: root's own)")
    p.add_argument("--out", help="write the table as JSON here")
    args = p.parse_args(argv)
    if args.grid is not None and args.grid < 1 or args.cut is not None and not 0 < args.cut <= 1:
        p.error("--grid must be 1 or more, --cut in (0, 1]")
    cfg = load_config(args.config)
    edges = PLACE_EDGES if args.grid is None else tuple(k / args.grid for k in range(1, args.grid))
    cut = cfg.train.mask_threshold if args.cut is None else args.cut
    pairs = EditPairs(args.root, args.split, cfg.model, seed=0, stride=cfg.data.frame_stride, train=False)
    prior = None
    words_from = args.prior_from or [args.root]  # the sets whose train splits teach the words
    if args.edit_type == "addition":
        taught = [EditPairs(root, "train", cfg.model, seed=0, stride=cfg.data.frame_stride, train=False)
                  for root in words_from]
        try:
            prior = word_prior(taught)
        except EditError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    per_pair: list[dict[str, float | str]] = []  # to set beside validation.json's per_pair rows by pair_id
    skipped: list[str] = []
    for row in pairs.rows:
        if row["edit_type"] != args.edit_type:
            continue
        try:
            if args.edit_type == "addition":
                views = addition_clips(pairs.root, row, pairs.cfg, pairs.stride, edges, cut, prior)
            else:
                views = text_clips(pairs.root, row, pairs.cfg, pairs.stride, cut)
        except (KeyError, TypeError, ValueError, EditError, VideoError, ManifestError) as exc:
            skipped.append(f"{row['pair_id']}: {exc}")
            continue
        target, kept = views.target[None], views.kept[None]
        per_pair.append({"pair_id": row["pair_id"],
                         **{name: float(psnr(clip[None], target)) for name, clip in views.clips.items()},
                         **{f"{name}, kept": float(psnr(clip[None], target, kept)) for name, clip in views.clips.items()}})
    if not per_pair:
        print(f"error: {args.root}: no readable {args.edit_type} pairs in the {args.split} split"
              + (f" ({len(skipped)} skipped, first {skipped[0]})" if skipped else ""), file=sys.stderr)
        return 2
    means = {name: float(np.nanmean([p[name] for p in per_pair])) for name in per_pair[0] if name != "pair_id"}
    table = {name: {"psnr": means[name], "gain_db": means[name] - means["copy"], "psnr_kept": means[f"{name}, kept"]}
             for name in means if not name.endswith(", kept")}
    print(f"{len(per_pair)} {args.edit_type} pairs ({args.root}, {args.split}); {len(skipped)} skipped"
          + (f", first {skipped[0]}" if skipped else ""))
    print(f"{'clip':42s} {'PSNR':>7s} {'gain':>7s} {'kept':>7s}")  # kept: PSNR outside the edit's mask
    for name, row in table.items():
        print(f"{name:42s} {row['psnr']:7.2f} {row['gain_db']:+7.2f} {row['psnr_kept']:7.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"edit_type": args.edit_type, "root": Path(args.root).name,
                                              "split": args.split, "pairs": len(per_pair),
                                              "cut": cut, **({"place_edges": edges,
                                                                "words_from": [Path(r).name for r in words_from]}
                                                             if args.edit_type == "addition" else {}),
                                              "skipped": len(skipped), "clips": table, "per_pair": per_pair},
                                             indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
