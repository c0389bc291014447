"""open_clip embeddings of frames and texts, and the three CLIP scores of a clip computed from them.

Scores, all from L2-normalised embeddings (cosines in [-1, 1]):
- `clip_text_alignment`: the clip's mean frame embedding against a caption or instruction;
- `clip_consistency`: mean cosine of consecutive sampled frames (low = flicker, cuts, chaos);
- `clip_aesthetic`: mean over frames of cos(frame, a "beautiful photo" prompt) minus cos(frame, a
  "blurry, ugly photo" prompt), a zero-shot proxy for an aesthetic predictor.
The frame embeddings are what a stage stores, so re-scoring against new text needs no decode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from curation.models.devices import torch_device
from curation.models.precision import Precision, autocast
from curation.models.weights import Family, ResolvedWeights, WeightsConfig, load_state_dict, resolve_weights, seeded_init

GOOD_PROMPT = "a beautiful, sharp, well composed, high quality photo"
BAD_PROMPT = "a blurry, ugly, badly exposed, low quality photo"


def download_open_clip(name: str, folder: Path) -> Path:
    """The library path: `name` is "<arch>:<pretrained tag>" (e.g. "ViT-B-32:openai"), fetched by open_clip."""
    from open_clip.pretrained import download_pretrained, get_pretrained_cfg

    arch, _, tag = name.partition(":")
    cfg = get_pretrained_cfg(arch, tag)
    if not cfg:
        raise ValueError(f"open_clip has no pretrained {tag!r} for {arch!r}")
    return Path(download_pretrained(cfg, cache_dir=str(folder)))


CLIP_FAMILY = Family("clip", download_open_clip)


class ClipConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    arch: str = "ViT-B-32"
    weights: WeightsConfig = WeightsConfig(weights="ViT-B-32:openai")
    image_size: int | None = Field(default=None, ge=32)  # None = the architecture's; smaller only for CPU tests
    batch: int = Field(default=32, ge=1)
    device: str = "auto"  # auto: the GPU Ray assigned this actor, else the CPU; or "cpu", "cuda:1", ...
    precision: Precision = "fp32"  # "bf16": autocast on CUDA


class ClipEmbedder:
    """Frame and text embeddings; `setup()` builds the model (real weights or random-init) on the worker."""

    name = "clip"
    version = "2"  # 2: resize and normalise as tensor ops on the device (torch's area mode, not cv2's INTER_AREA)

    def __init__(self, config: ClipConfig) -> None:
        self.config = config
        self.model_name = f"open_clip-{config.arch}"
        self.weights_id = ""
        self.model: Any = None  # an open_clip CLIP once set up (open_clip ships no types)

    def resolve(self) -> ResolvedWeights:
        """Find the weights (or random-init when allowed); raises WeightsError with how to provide them."""
        return resolve_weights(self.config.weights, CLIP_FAMILY)

    def setup(self) -> None:
        import open_clip

        self.device = torch_device(self.config.device)
        resolved = self.resolve()
        with seeded_init():
            model = open_clip.create_model(self.config.arch, pretrained=None, force_image_size=self.config.image_size)
        if resolved.path is not None:  # not random-init
            model.load_state_dict(load_state_dict(resolved.path))
        self.model = model.to(self.device).eval()
        self.tokenizer = open_clip.get_tokenizer(self.config.arch)
        size = model.visual.image_size
        self.image_size = size if isinstance(size, int) else int(size[0])
        self.mean = np.array(model.visual.preprocess_cfg.get("mean", (0.48145466, 0.4578275, 0.40821073)), np.float32)
        self.std = np.array(model.visual.preprocess_cfg.get("std", (0.26862954, 0.26130258, 0.27577711)), np.float32)
        self.weights_id = resolved.weights_id
        self._aesthetic = self.texts([GOOD_PROMPT, BAD_PROMPT])  # (2, D)

    def _pixels(self, frames: np.ndarray):
        """RGB uint8 (T, H, W, 3) -> normalised float tensor (T, 3, S, S) on the model's device: short side to S
        (area averaging when shrinking), centre crop; tensor ops there, not a resize per frame on the host."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
        x = x.permute(0, 3, 1, 2).float()  # (T, 3, H, W)
        x = resize_short_side(x, self.image_size)
        mean, std = (torch.as_tensor(v, device=x.device).view(1, 3, 1, 1) for v in (self.mean, self.std))
        return (x / 255.0 - mean) / std  # (T, 3, S, S)

    def frames(self, frames: np.ndarray) -> np.ndarray:
        """L2-normalised embeddings (T, D) float32 of RGB frames (T, H, W, 3), in batches of `batch`."""
        import torch

        parts = []
        with torch.inference_mode(), autocast(self.device, self.config.precision):
            for i in range(0, len(frames), self.config.batch):
                e = self.model.encode_image(self._pixels(frames[i : i + self.config.batch]))  # (B, D)
                parts.append(torch.nn.functional.normalize(e.float(), dim=-1).cpu().numpy())
        return np.concatenate(parts)

    def texts(self, texts: list[str]) -> np.ndarray:
        """L2-normalised embeddings (N, D) float32 of texts."""
        import torch

        with torch.inference_mode(), autocast(self.device, self.config.precision):
            e = self.model.encode_text(self.tokenizer(texts).to(self.device))  # (N, D)
            return torch.nn.functional.normalize(e.float(), dim=-1).cpu().numpy()

    def scores(self, frame_emb: np.ndarray, text: str | None) -> dict[str, float | None]:
        """The clip's CLIP scores from its frame embeddings (T, D); alignment is None without text."""
        return clip_scores(frame_emb, None if text is None else self.texts([text])[0], self._aesthetic)


def resize_short_side(frames: Any, size: int) -> Any:
    """Float frames (T, 3, H, W) with the short side scaled to `size` and centre-cropped to (T, 3, size, size):
    area averaging when shrinking (what cv2's INTER_AREA does for CLIP's usual 2-5x), bilinear when growing."""
    import torch.nn.functional as F

    h, w = frames.shape[2:]
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    mode = "area" if scale < 1 else "bilinear"
    resized = F.interpolate(frames, size=(new_h, new_w), mode=mode, **({} if mode == "area" else {"align_corners": False}))
    y, x = (new_h - size) // 2, (new_w - size) // 2
    return resized[:, :, y : y + size, x : x + size]


def clip_scores(frame_emb: np.ndarray, text_emb: np.ndarray | None, aesthetic: np.ndarray) -> dict[str, float | None]:
    """Pure math of the scores: frame_emb (T, D), text_emb (D,), aesthetic (2, D) good/bad prompts, all unit norm."""
    consistency = float(np.mean(np.sum(frame_emb[1:] * frame_emb[:-1], axis=1))) if len(frame_emb) > 1 else None
    return {
        "clip_text_alignment": None if text_emb is None else text_alignment(frame_emb, text_emb),
        "clip_consistency": consistency,
        "clip_aesthetic": float(np.mean(frame_emb @ aesthetic[0] - frame_emb @ aesthetic[1])),
    }


def text_alignment(frame_emb: np.ndarray, text_emb: np.ndarray) -> float:
    """Cosine of the clip's mean frame embedding (of frame_emb (T, D)) with the unit-norm text_emb (D,)."""
    mean = frame_emb.mean(axis=0)
    mean = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return float(mean @ text_emb)
