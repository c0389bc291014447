"""`python -m isa_model {train,validate,rescore,edit}`: the LIVEditor command line.

Bad input (a missing file, an unknown or out-of-bounds config, a checkpoint from another config, a damaged or
tampered checkpoint, a dataset the manifests refuse) is one `error: ...` line and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from isa_model.checkpoint import CheckpointError
from isa_model.config import ConfigError, load_config
from manifests.errors import ManifestError
from manifests.media.atomic import atomic_output
from manifests.storage import location
from manifests.uris import local_path

USER_ERRORS = (ConfigError, CheckpointError, ManifestError, FileNotFoundError)
"""What bad input raises; each carries a one-line message."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m isa_model", description="LIVEditor: in-context video editing with ISA")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train (single process or under torchrun)")
    t.add_argument("--config", required=True, help="tiny, small or a JSON file")
    t.add_argument("--out", required=True, help="run folder (metrics.jsonl, checkpoints/, loss.png)")
    t.add_argument("--data", help="dataset root with manifests/edit_pairs (default: the config's, else synthetic)")
    t.add_argument("--snapshot", help="a manifests snapshot JSON: train on its edit_pairs rows (no Delta log read)")
    t.add_argument("--steps", type=int, help="override train.steps")
    t.add_argument("--seed", type=int, help="override train.seed")
    t.add_argument("--batch-size", type=int, help="override data.batch_size")
    t.add_argument("--lr", type=float, help="override train.lr")
    t.add_argument("--crop", choices=("random", "centre"),
                   help="override data.crop (random: each sample's first frame and crop drawn; centre: as validation)")
    t.add_argument("--mirror", type=float,
                   help="override data.mirror (probability a sample is mirrored, its instruction's left and right swapped)")
    t.add_argument("--reverse", type=float,
                   help="override data.reverse (probability a sample plays backwards, its instruction's path reversed)")
    t.add_argument("--decay-steps", type=int,
                   help="override train.decay_steps (the learning rate falls to 0 over the last this many steps)")
    t.add_argument("--objective", choices=("noise", "source", "delta"),
                   help="override model.objective (objective.py)")
    t.add_argument("--blend-mask", choices=("on", "off"), help="override model.blend_mask")
    t.add_argument("--clip-coords", choices=("on", "off"),
                   help="override model.clip_coords (each token also embeds its place in the whole clip)")
    t.add_argument("--layout", choices=("on", "off"),
                   help="override model.layout (each token also embeds its offset from the place the instruction names)")
    t.add_argument("--mask-weight", type=float, help="override train.mask_weight (the blend mask's cross-entropy)")
    t.add_argument("--edit-weight", type=float,
                   help="override train.edit_weight (a pair weighs 1 + this / the fraction of pixels it edits)")
    t.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    t.add_argument("--time-limit", type=float, help="stop (and checkpoint) after this many seconds")
    t.add_argument("--attention", choices=("isa", "dense"), help="override model.attention")
    t.add_argument("--context-cache", action="store_true", help="train in context K/V cache mode")
    t.add_argument("--text-attention", choices=("on", "off"),
                   help="override model.text_attention (each block also attends to the instruction's tokens)")
    t.add_argument("--compile", choices=("on", "off"),
                   help="override model.compile (torch.compile of each block's element-wise work)")
    t.add_argument("--graph-plan-train", choices=("on", "off"),
                   help="override model.isa.graph_plan_train (a CUDA training call replays its block selection as a graph)")
    t.add_argument("--graph-call-train", choices=("on", "off"),
                   help="override model.isa.graph_call_train (a CUDA training call replays its whole call, backward "
                        "too, as graphs)")
    v = sub.add_parser("validate", help="sample the val split and score it")
    v.add_argument("--ckpt", required=True, help="a checkpoint folder or a run's checkpoints/ folder")
    v.add_argument("--out", required=True)
    v.add_argument("--config", help="fail unless the checkpoint was trained with this config's model")
    v.add_argument("--data", help="dataset root (default: the one the run trained on)")
    v.add_argument("--snapshot", help="a manifests snapshot JSON: validate on its edit_pairs rows")
    v.add_argument("--split", default="val", help="the split to score (default val)")
    v.add_argument("--start-t", type=float, default=1.0,
                   help="noise objective: sample from the source noised to this t (SDEdit) instead of from noise")
    v.add_argument("--steps", type=int)
    v.add_argument("--guidance", type=float)
    v.add_argument("--mask-threshold", type=float,
                   help="a blend mask's sampling cut: pixels under it stay the source (default: the config's)")
    v.add_argument("--max-pairs", type=int)
    v.add_argument("--weights", choices=("ema", "model"), default="ema", help="EMA (default) or raw weights")
    v.add_argument("--isa-fp8", choices=("on", "off"), default="off",
                   help="the ISA model's exact attention scores from fp8 (e4m3) q and k (model.isa.fp8_scores)")
    r = sub.add_parser("rescore", help="take a validation report's means again from its per-pair rows, leaving out "
                       "pairs with nothing edited in view (isa_model.validate.edit_in_view); rewrites it in place")
    r.add_argument("reports", nargs="+", help="validation.json files")
    e = sub.add_parser("edit", help="edit a clip with an instruction")
    e.add_argument("--ckpt", required=True)
    e.add_argument("--video", required=True)
    e.add_argument("--instruction", required=True)
    e.add_argument("--out", default="edit.mp4")
    e.add_argument("--steps", type=int, default=16)
    e.add_argument("--guidance", type=float, help="classifier-free guidance (default: the config's)")
    e.add_argument("--seed", type=int, default=0)
    return p


def _overrides(args: argparse.Namespace) -> dict[str, dict]:
    changes: dict[str, dict] = {"model": {}, "data": {}, "train": {}}
    if args.data:
        changes["data"]["root"] = args.data
    if args.snapshot:
        changes["data"]["snapshot"] = args.snapshot
    if args.steps:
        changes["train"]["steps"] = args.steps
    if args.seed is not None:
        changes["train"]["seed"] = args.seed
    if args.batch_size is not None:
        changes["data"]["batch_size"] = args.batch_size
    if args.lr is not None:
        changes["train"]["lr"] = args.lr
    if args.crop is not None:
        changes["data"]["crop"] = args.crop
    for name in ("mirror", "reverse"):
        if getattr(args, name) is not None:
            changes["data"][name] = getattr(args, name)
    if args.decay_steps is not None:
        changes["train"]["decay_steps"] = args.decay_steps
    if args.objective:
        changes["model"]["objective"] = args.objective
    if args.blend_mask:
        changes["model"]["blend_mask"] = args.blend_mask == "on"
    if args.clip_coords:
        changes["model"]["clip_coords"] = args.clip_coords == "on"
    if args.layout:
        changes["model"]["layout"] = args.layout == "on"
    if args.mask_weight is not None:
        changes["train"]["mask_weight"] = args.mask_weight
    if args.edit_weight is not None:
        changes["train"]["edit_weight"] = args.edit_weight
    if args.attention:
        changes["model"]["attention"] = args.attention
    if args.context_cache:
        changes["model"]["context_cache"] = True
    if args.compile:
        changes["model"]["compile"] = args.compile == "on"
    if args.text_attention:
        changes["model"]["text_attention"] = args.text_attention == "on"
    for flag in ("graph_plan_train", "graph_call_train"):
        if getattr(args, flag):
            changes["model"].setdefault("isa", {})[flag] = getattr(args, flag) == "on"
    return changes


def _read_report(path: Path) -> dict:
    """A validation.json with per-pair rows, or ConfigError in one line."""
    try:
        report = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable validation report ({exc})") from None
    if not isinstance(report, dict) or not isinstance(report.get("per_pair"), list):
        raise ConfigError(f"{path}: a validation report with per-pair rows (`per_pair`) is needed")
    return report


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        for name in ("out", "data", "ckpt", "video"):  # no `s3:` folder in the working directory (--data may be s3://)
            value = getattr(args, name, None)
            if isinstance(value, str):
                (location if name == "data" else local_path)(value, f"--{name}")
        if args.command == "train":
            from isa_model.train import train

            train(load_config(args.config, _overrides(args)), args.out, args.resume, args.time_limit)
        elif args.command == "validate":
            from isa_model.validate import print_report, validate

            wanted = load_config(args.config) if args.config else None
            report = validate(args.ckpt, args.out, args.data, wanted, args.steps, args.guidance, args.max_pairs,
                              weights=args.weights, snapshot_file=args.snapshot or "", split=args.split,
                              start_t=args.start_t, mask_threshold=args.mask_threshold,
                              isa_fp8=args.isa_fp8 == "on")
            print_report(report)
            print(json.dumps({"validation": f"{args.out}/validation.json"}))
        elif args.command == "rescore":
            from isa_model.validate import print_report, rescore

            for name in args.reports:
                path = local_path(name, "report")
                report = rescore(_read_report(path))
                with atomic_output(path) as temp:  # the old report stays whole until the new one is
                    temp.write_text(json.dumps(report, indent=1))
                print(f"== {name}")
                print_report(report)
        else:
            from isa_model.sample import edit_video

            path = edit_video(args.ckpt, args.video, args.instruction, args.out, args.steps, args.guidance, args.seed)
            print(f"wrote {path}")
    except USER_ERRORS as exc:
        print("error: " + " ".join(str(exc).split()), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
