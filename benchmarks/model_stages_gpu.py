"""YOLO, SAM and CLIP on one GPU: frames/s per model and batch, and the model stages' clips/s with decode.

Part 1, per model (random-init weights: speed does not depend on their values), median of timed repeats
after warm-up, CUDA-synchronised: YOLO11n forward at 640 in fp16 (ultralytics' half mode) and its
`predict` end to end; SAM vit_b's image encoder at 1024 in bf16 autocast (and fp32 once, for the ratio),
its box-prompt decoding, and `SamMasker.masks` on one frame as the objects stage calls it; CLIP ViT-B-32's
image encoder at 224 in bf16 and `ClipEmbedder.frames` as the CLIP stage calls it. FLOPs per frame come
from torch's FlopCounterMode, so each row also gives achieved TFLOP/s.

Part 2, the model stages end to end: H.264 clips made here go through the real `ObjectsStage`
(yolo-sam) and `ClipScoresStage` code, decode included, in W worker processes that share the GPU the
way Ray actors with fractional num_gpus would. A thread samples GPU utilisation (NVML, every 0.1 s) and
CPU load over the timed window. Random-init YOLO finds nothing above any real threshold, so the detector
runs at conf 0 with ByteTrack's thresholds at 0, matching by IoU alone (`fuse_score` off: its ~0 scores
would veto every match, and tracks would churn) and `max_det` = --objects: SAM then does the work of a
clip with that many objects on every frame (the table reports the share of frames SAM saw).

    python benchmarks/model_stages_gpu.py [--workers 1,4,8] [--stage-seconds 40] [--out FILE]
    python benchmarks/model_stages_gpu.py --device cpu --tiny --out tiny.json   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from stage_runner import run_stages  # noqa: E402  (beside this file; spawned workers import it by that name)

BUSY_BAR = 70.0  # % of the timed window the GPU must be busy over the model stages
RANDOM = {"weights": "random-init", "allow_random_init": True, "download": False}
KEEP_ALL = {"tracker_type": "bytetrack", "track_high_thresh": 0.0, "track_low_thresh": 0.0, "new_track_thresh": 0.0,
            "track_buffer": 30, "match_thresh": 0.8, "fuse_score": False}  # ByteTrack that keeps random-init boxes


@dataclass(frozen=True)
class Sizes:
    """Input sizes and batch sizes of one run (full on a GPU, tiny for the CPU smoke test)."""

    yolo_imgsz: int
    yolo_batches: tuple[int, ...]
    sam_size: int
    sam_batches: tuple[int, ...]
    clip_arch: str
    clip_size: int | None  # None = the architecture's (224)
    clip_batches: tuple[int, ...]
    width: int  # synthetic clips
    height: int
    fps: float
    clip_frames: int
    distinct_clips: int
    repeats: int


FULL = Sizes(640, (16, 64, 256), 1024, (1, 8, 32), "ViT-B-32", None, (64, 256, 1024), 640, 360, 25.0, 125, 8, 5)
TINY = Sizes(64, (2,), 64, (1, 2), "ViT-S-32", 64, (2,), 128, 72, 25.0, 6, 2, 1)


# ---------------------------------------------------------------------------------------------- timing
def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def median_seconds(fn: Callable[[], Any], device: str, repeats: int, warmup: int = 1) -> float:
    """Median wall seconds of fn(), the device synchronised before and after each call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def flops_of(fn: Callable[[], Any]) -> int:
    """Floating-point operations of one call of fn (torch's counter: matmuls, convolutions, attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def model_row(model: str, what: str, size: str, precision: str, batch: int, seconds: float, flops: int | None,
              items: str = "frames") -> dict:
    """One table row; `flops` is per item (one frame), so achieved TFLOP/s = flops x items/s."""
    per_s = batch / seconds
    return {"model": model, "what": what, "input": size, "precision": precision, "batch": batch,
            "ms_per_batch": seconds * 1e3, f"{items}_per_s": per_s, "items": items,
            "gflop_per_item": None if flops is None else flops / 1e9,
            "tflops": None if flops is None else flops * per_s / 1e12}


# ------------------------------------------------------------------------------------------ part 1
def bench_yolo(s: Sizes, device: str, frames: np.ndarray) -> list[dict]:
    import torch

    from curation.models.weights import WeightsConfig
    from curation.models.yolo import YoloConfig, YoloTracker

    half = device.startswith("cuda")
    prec = "fp16" if half else "fp32"
    yolo = YoloTracker(YoloConfig(weights=WeightsConfig(**RANDOM), imgsz=s.yolo_imgsz, device=device, half=half))
    yolo.setup()
    rows = []
    b = s.yolo_batches[len(s.yolo_batches) // 2]
    batch = [np.ascontiguousarray(frames[i % len(frames), :, :, ::-1]) for i in range(b)]  # BGR, as the wrapper
    predict = lambda: yolo.model.predict(batch, imgsz=s.yolo_imgsz, half=half, device=device, conf=0.25,  # noqa: E731
                                         max_det=50, verbose=False)
    t = median_seconds(predict, device, s.repeats)
    rows.append(model_row("yolo11n", f"predict {frames.shape[2]}x{frames.shape[1]} (letterbox+NMS)",
                          str(s.yolo_imgsz), prec, b, t, None))
    net = yolo.model.predictor.model.model  # the fused network predict built (fp16 on CUDA)
    dtype = torch.float16 if half else torch.float32
    for b in s.yolo_batches:
        x = torch.rand(b, 3, s.yolo_imgsz, s.yolo_imgsz, device=device, dtype=dtype)  # (B, 3, S, S)
        with torch.inference_mode():
            fl = flops_of(partial(net, x[:1]))
            t = median_seconds(partial(net, x), device, s.repeats)
        rows.append(model_row("yolo11n", "forward", f"{s.yolo_imgsz}x{s.yolo_imgsz}", prec, b, t, fl))
    return rows


def bench_sam(s: Sizes, device: str, frames: np.ndarray, objects: int) -> list[dict]:
    import torch
    from segment_anything import SamPredictor

    from curation.models.precision import autocast
    from curation.models.sam import SamConfig, SamMasker, build_sam
    from curation.models.weights import WeightsConfig

    cuda = device.startswith("cuda")
    model = build_sam("vit_b", s.sam_size).to(device).eval()
    rows = []
    runs = [(b, "bf16" if cuda else "fp32") for b in s.sam_batches]
    if cuda:
        runs.append((s.sam_batches[len(s.sam_batches) // 2], "fp32"))
    for b, prec in runs:
        x = torch.randn(b, 3, s.sam_size, s.sam_size, device=device)  # (B, 3, S, S), normalised pixels
        with torch.inference_mode(), autocast(device, prec):
            fl = flops_of(partial(model.image_encoder, x[:1]))
            t = median_seconds(partial(model.image_encoder, x), device, s.repeats)
        rows.append(model_row("sam vit_b", "image encoder", f"{s.sam_size}x{s.sam_size}", prec, b, t, fl))
    prec = "bf16" if cuda else "fp32"
    frame = frames[0]
    h, w = frame.shape[:2]
    predictor = SamPredictor(model)
    with torch.inference_mode(), autocast(device, prec):
        predictor.set_image(frame)
        for n in sorted({objects, 64}):
            xy = torch.rand(n, 2, 2, device=device).sort(dim=1).values * torch.tensor([w, h], device=device)
            boxes = predictor.transform.apply_boxes_torch(xy.reshape(n, 4), (h, w))  # (N, 4) xyxy at S
            decode = partial(predictor.predict_torch, None, None, boxes=boxes, multimask_output=False)
            t = median_seconds(decode, device, s.repeats)
            rows.append(model_row("sam vit_b", f"box prompts -> masks at {w}x{h}", "", prec, n, t, None, "boxes"))
    masker = SamMasker(SamConfig(weights=WeightsConfig(**RANDOM), image_size=s.sam_size, device=device, precision=prec))
    masker.setup()
    boxes = np.array([[w * 0.1 * k, h * 0.1, w * (0.3 + 0.1 * k), h * 0.8] for k in range(objects)], np.float32)
    t = median_seconds(lambda: masker.masks(frame, boxes), device, s.repeats)
    rows.append(model_row("sam vit_b", f"SamMasker.masks, {objects} boxes (stage path)", f"{w}x{h}", prec, 1, t, None))
    return rows


def bench_clip(s: Sizes, device: str, frames: np.ndarray) -> list[dict]:
    import torch

    from curation.models.clip import ClipConfig, ClipEmbedder
    from curation.models.precision import autocast
    from curation.models.weights import WeightsConfig

    prec = "bf16" if device.startswith("cuda") else "fp32"
    emb = ClipEmbedder(ClipConfig(arch=s.clip_arch, weights=WeightsConfig(**RANDOM), image_size=s.clip_size,
                                  batch=s.clip_batches[0], device=device, precision=prec))
    emb.setup()
    rows = []
    for b in s.clip_batches:
        x = torch.randn(b, 3, emb.image_size, emb.image_size, device=device)  # (B, 3, S, S)
        with torch.inference_mode(), autocast(device, prec):
            fl = flops_of(partial(emb.model.encode_image, x[:1]))
            t = median_seconds(partial(emb.model.encode_image, x), device, s.repeats)
        rows.append(model_row(s.clip_arch, "image encoder", f"{emb.image_size}x{emb.image_size}", prec, b, t, fl))
    batch = frames[np.arange(s.clip_batches[0]) % len(frames)]
    t = median_seconds(lambda: emb.frames(batch), device, s.repeats)
    rows.append(model_row(s.clip_arch, "ClipEmbedder.frames (resize+encode, stage path)",
                          f"{frames.shape[2]}x{frames.shape[1]}", prec, len(batch), t, None))
    return rows


# ------------------------------------------------------------------------------------------ clips
def write_clips(root: Path, s: Sizes) -> list[Path]:
    """`distinct_clips` H.264 pans across bundled photos (real texture), `clip_frames` frames each."""
    import cv2

    from curation.corpus.photos import load_photo
    from manifests.media.encode import VideoWriter

    names = ("coffee", "chelsea", "astronaut", "rocket", "immunohistochemistry", "brick", "grass", "camera")
    paths = []
    for k in range(s.distinct_clips):
        photo = load_photo(names[k % len(names)])
        big = cv2.resize(photo, (s.width * 3 // 2, s.height * 3 // 2), interpolation=cv2.INTER_AREA)
        path = root / f"clip{k:02d}.mp4"
        with VideoWriter(path, s.fps) as writer:
            for i in range(s.clip_frames):
                x = (i * (big.shape[1] - s.width)) // max(1, s.clip_frames - 1)
                y = (k * 7) % (big.shape[0] - s.height)
                writer.write(np.ascontiguousarray(big[y : y + s.height, x : x + s.width]))
        paths.append(path)
    return paths


# ------------------------------------------------------------------------------------------ part 2
def stage_job(s: Sizes, device: str, objects: int, tracker_yaml: str, sam_options: dict) -> SimpleNamespace:
    """The slice of a job config the two stages read, with every model on `device`; `sam_options` are
    fields of the objects section (`keyframes`) and of its SAM config (the rest)."""
    from curation.models.clip import ClipConfig
    from curation.models.keyframes import KeyframeConfig
    from curation.models.sam import SamConfig
    from curation.models.weights import WeightsConfig
    from curation.models.yolo import YoloConfig
    from curation.stages.clip_scores import ClipScoresConfig
    from curation.stages.objects import ObjectsConfig

    cuda, w = device.startswith("cuda"), WeightsConfig(**RANDOM)
    prec = "bf16" if cuda else "fp32"
    return SimpleNamespace(
        objects=ObjectsConfig(
            methods=("yolo-sam",), short_side=min(s.width, s.height),
            yolo=YoloConfig(weights=w, imgsz=s.yolo_imgsz, conf=0.0, max_det=objects, batch=32, tracker=tracker_yaml,
                            device=device, half=cuda),
            keyframes=KeyframeConfig(interval=sam_options.get("interval", 1)),
            sam=SamConfig(weights=w, image_size=s.sam_size, device=device, precision=prec,
                          **{k: v for k, v in sam_options.items() if k != "interval"})),
        clip_scores=ClipScoresConfig(clip=ClipConfig(arch=s.clip_arch, weights=w, image_size=s.clip_size, batch=32,
                                                     device=device, precision=prec)))


# ------------------------------------------------------------------------------------------ report
def print_tables(report: dict) -> None:
    print(f"\n{report['device']}, {report['date']}, torch {report['torch']}, triton {report['triton']}, "
          f"{report['cpu_count']} CPU cores, weights {report['weights']}")
    print(f"{'model':10} {'what':52} {'input':>9} {'prec':>5} {'batch':>5} {'ms':>8} {'per s':>9} {'TFLOP/s':>8}")
    for r in report["models"]:
        tf = "" if r["tflops"] is None else f"{r['tflops']:.1f}"
        print(f"{r['model']:10} {r['what'][:52]:52} {r['input']:>9} {r['precision']:>5} {r['batch']:>5} "
              f"{r['ms_per_batch']:>8.2f} {r[r['items'] + '_per_s']:>9.1f} {tf:>8}")
    print(f"\n{'workers':>7} {'clips':>6} {'s':>6} {'clips/s':>8} {'frames/s':>9} {'GPU busy %':>10} {'p10':>5} "
          f"{'CPU %':>6} {'SAM frames':>10} {'boxes':>5} {'decode+host':>11} {'yolo':>5} {'sam':>5} {'clip':>5} {'errors':>6}")
    for r in report["stages"]:
        busy = "n/a" if r["gpu_busy_mean_pct"] is None else f"{r['gpu_busy_mean_pct']:.1f}"
        p10 = "n/a" if r["gpu_busy_p10_pct"] is None else f"{r['gpu_busy_p10_pct']:.0f}"
        sh = r["share_of_worker_time"]
        print(f"{r['workers']:>7} {r['clips']:>6} {r['seconds']:>6.1f} {r['clips_per_s']:>8.2f} "
              f"{r['frames_decoded_per_s']:>9.1f} {busy:>10} {p10:>5} {r['cpu_busy_mean_pct']:>6.1f} "
              f"{r['sam_frames_share']:>10.2f} {r['sam_prompts_per_sam_frame']:>5.2f} "
              f"{sh['decode_and_host']:>11.2f} {sh['yolo']:>5.2f} {sh['sam']:>5.2f} {sh['clip']:>5.2f} {r['errors']:>6}")
    bar = report["bar"]
    verdict = "n/a (no GPU utilisation readable)" if bar["met"] is None else ("PASS" if bar["met"] else "MISS")
    print(f"bar: GPU busy >= {bar['gpu_busy_min_pct']:.0f}% at {bar['workers']} workers: {verdict}")


def write_report(report: dict, out: str) -> None:
    """The JSON so far, replaced whole (temp name, then rename): a run cut short keeps the parts it finished."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    os.replace(tmp, path)


def worker_counts(text: str) -> list[int]:
    """'1,4,8' -> [1, 4, 8]; argparse turns the ValueError into a one-line usage error."""
    counts = [int(w) for w in text.split(",")]
    if not counts or min(counts) < 1:
        raise ValueError(text)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--tiny", action="store_true", help="tiny inputs and models: a smoke run on a CPU")
    parser.add_argument("--workers", type=worker_counts, default=None, help="worker counts of the stage runs, e.g. 1,4,8")
    parser.add_argument("--stage-seconds", type=float, default=40.0, help="timed window of each stage run")
    parser.add_argument("--max-clips", type=int, default=None, help="clips per stage run at most")
    parser.add_argument("--objects", type=int, default=4, help="YOLO boxes per frame (max_det), so SAM prompts")
    parser.add_argument("--skip-models", action="store_true", help="only the stage runs")
    parser.add_argument("--keyframe-interval", type=int, default=1,
                        help="SAM on every k-th frame of a track, masks carried between (default 1: every frame)")
    parser.add_argument("--sam-option", action="append", default=[], metavar="FIELD=VALUE",
                        help="a SamConfig field for the stage runs, e.g. attention=fused, compile=true, batch=8")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "model_stages_gpu.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {device}: torch sees no CUDA device here")
    s = TINY if args.tiny else FULL
    workers = args.workers or ([1, 2] if args.tiny else [1, 4, 8])
    max_clips = args.max_clips or (2 if args.tiny else 1_000_000)
    cores = len(os.sched_getaffinity(0))
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    report = {"benchmark": "model_stages_gpu", "device": torch.cuda.get_device_name() if device == "cuda" else
              f"{platform.machine()} CPU", "torch": torch.__version__, "triton": triton_version,
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu_count": cores, "tiny": args.tiny,
              "weights": "random-init", "sizes": asdict(s), "objects_per_frame": args.objects, "tracker": KEEP_ALL,
              "models": [], "stages": []}
    with tempfile.TemporaryDirectory() as tmp:
        clips = write_clips(Path(tmp), s)
        from manifests.media.decode import read_frames

        frames = read_frames(clips[0])  # (T, H, W, 3)
        if not args.skip_models:
            for bench in (lambda: bench_yolo(s, device, frames), lambda: bench_sam(s, device, frames, args.objects),
                          lambda: bench_clip(s, device, frames)):
                report["models"] += bench()
                write_report(report, args.out)
                if device == "cuda":
                    torch.cuda.empty_cache()
        tracker = Path(tmp) / "bytetrack_keep_all.yaml"  # every threshold 0, IoU alone: random-init boxes track
        tracker.write_text(json.dumps(report["tracker"]))
        sam_options = {"interval": args.keyframe_interval, **dict(o.split("=", 1) for o in args.sam_option)}
        report["stage_sam_options"] = sam_options
        job = stage_job(s, device, args.objects, str(tracker), sam_options)
        for w in workers:
            report["stages"].append(run_stages(w, clips, job, s.clip_frames, args.stage_seconds, max_clips, cores))
            write_report(report, args.out)
            print(json.dumps(report["stages"][-1]), flush=True)
    top = max(report["stages"], key=lambda r: r["clips_per_s"])
    busy = top["gpu_busy_mean_pct"]
    report["bar"] = {"gpu_busy_min_pct": BUSY_BAR, "workers": top["workers"],
                     "met": None if busy is None else busy >= BUSY_BAR}
    write_report(report, args.out)
    print_tables(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
