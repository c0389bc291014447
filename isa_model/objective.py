"""The training objective and the sampler's path: the one place where both are defined.

Both objectives are a straight path from t = 1 to the target x0 at t = 0, `x_t = (1 - t) x0 + t x1`, along
which the model predicts the velocity `v = x1 - x0` and sampling integrates from t = 1 down to 0:

- `noise` (rectified flow, the first LIVEditor): x1 is Gaussian noise. The sample starts from noise and
  regenerates every pixel, kept ones included.
- `source` (a bridge from the source clip): x1 is the source. The sample starts at the source, and a pixel
  the edit leaves alone has velocity 0 all the way. The zero-initialised output layer makes an untrained
  model copy the source exactly. The model also sees the source as context, so for t < 1 it can read the
  velocity off its input, `v = (source - x_t) / (1 - t)`: only near t = 1 must it know the edit, and its
  sample is that prediction carried along a straight line.
- `delta` (the change relative to the source): the `source` path at t = 1 only. The model predicts
  `v = source - x0` from the source and the instruction, and sampling is that one step, `x0 = source - v`.
  Every training step is spent where the edit has to be known.

`blend_mask` (only with `source`): the model also predicts, per pixel, the probability m that the edit
changes it, and its velocity is `m * u`. m is trained with binary cross-entropy against where the target
differs from the source (`change_mask`), weighted by `train.mask_weight` beside the velocity MSE; at the end
of sampling every pixel whose last predicted m is under `train.mask_threshold` is set to the source, so the
region the model keeps is the source, exactly.

`train.edit_weight` (`pair_weights`): each pair's loss is scaled by 1 + edit_weight / (the fraction of its
pixels it edits), so a pair's edited pixels count about edit_weight whole frames, whatever their area. A plain
pixel mean weighs a pair by the area it edits: a style change (every pixel) outweighed a caption (2 % of them)
fifty to one, and the local types learnt last. The weight is one number per pair, never per pixel: weighting
the edited pixels alone (tried first, H200 2026-12-04) moves every pixel's optimum towards "edited", and the
blend mask then fired outside the edits (kept region 30 dB against the copy's 45).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

OBJECTIVES = ("noise", "source", "delta")
STARTS_AT_SOURCE = ("source", "delta")
CHANGE_THRESHOLD = 0.1
"""|target - source| (on [-1, 1], max over channels) above which a pixel counts as edited: 13 levels of 255,
above the codec's noise between two encodings of one clip (copy-the-source PSNR outside edits is 42-48 dB)."""
EDIT_AREA_FLOOR = 0.01
"""`pair_weights` divides by a pair's edited fraction, never by less than this: a pair whose change is a few
stray pixels weighs at most 1 + 100 x edit_weight, not an unbounded weight."""


def _bcast(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, 1, ...) for broadcasting against `like`."""
    return t.view(-1, *([1] * (like.dim() - 1)))


def path_start(objective: str, source: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """x1, where the path starts at t = 1: the noise or the source clip, (B, C, T, H, W)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r} is not one of {', '.join(OBJECTIVES)}")
    return noise if objective == "noise" else source


def timesteps(objective: str, n: int, gen: torch.Generator) -> torch.Tensor:
    """(n,) training timesteps. `noise`: logit-normal (SD3: more weight mid-path). `source`: uniform, because
    only near t = 1 must its model know the edit (logit-normal puts 0.2 % of the steps above t = 0.95, uniform
    5 %; with logit-normal the tiny model of the tests learnt to copy the source). `delta`: 1."""
    if objective == "noise":
        return torch.sigmoid(torch.randn(n, generator=gen))
    t = torch.rand(n, generator=gen)
    return torch.ones_like(t) if objective == "delta" else t


def sampling_steps(objective: str, steps: int) -> int:
    """Euler steps to take: `delta` is one step from t = 1 (its model knows no other t)."""
    return 1 if objective == "delta" else steps


def path_point(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_t, v): the point at t (B,) on the straight path from x1 (t = 1) to x0 (t = 0) and its velocity."""
    tb = _bcast(t, x0)  # (B, 1, 1, 1, 1)
    return (1 - tb) * x0 + tb * x1, x1 - x0


def change_mask(source: torch.Tensor, target: torch.Tensor, threshold: float = CHANGE_THRESHOLD) -> torch.Tensor:
    """(B, 1, T, H, W) float in {0, 1}: pixels where the target differs from the source by more than
    `threshold` in any channel. Not grown: a pixel called edited that is not gets the model's velocity error,
    one that is edited by less than the threshold stays the source (at most 13 levels off)."""
    return ((target - source).abs().amax(dim=1, keepdim=True) > threshold).float()  # (B, 1, T, H, W)


def pair_weights(changed: torch.Tensor, edit_weight: float) -> torch.Tensor:
    """(B, 1, 1, 1, 1) loss weight per pair from `change_mask` (B, 1, T, H, W): 1 + edit_weight / (the pair's
    edited fraction, at least EDIT_AREA_FLOOR); 1 for a pair with nothing edited in view (a crop that misses
    the edit). Every pixel of a pair gets its weight, so within a pair each pixel's optimum (velocity, mask
    probability) is what the plain mean gives."""
    area = changed.flatten(1).mean(dim=1)  # (B,)
    return _bcast(torch.where(area > 0, 1 + edit_weight / area.clamp_min(EDIT_AREA_FLOOR), 1.0), changed)


@dataclass
class Prediction:
    """The model's output split: velocity (B, C, T, H, W) and, with a blend mask, its logits (B, 1, T, H, W)."""

    velocity: torch.Tensor
    mask_logits: torch.Tensor | None = None


def split_output(raw: torch.Tensor, channels: int, blend_mask: bool) -> Prediction:
    """raw (B, C [+ 1], T, H, W) -> Prediction; with a blend mask the velocity is sigmoid(logits) * u."""
    if not blend_mask:
        return Prediction(raw)
    u, logits = raw[:, :channels], raw[:, channels:]  # (B, C, T, H, W), (B, 1, T, H, W)
    return Prediction(torch.sigmoid(logits.float()) * u.float(), logits)


def loss(pred: Prediction, v: torch.Tensor, changed: torch.Tensor, mask_weight: float,
         edit_weight: float = 0.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Velocity MSE, plus `mask_weight` x the blend mask's BCE against `changed` (B, 1, T, H, W) when the
    model has one; both with `pair_weights`. Returns the loss and its parts (floats, for the metrics)."""
    w = pair_weights(changed, edit_weight)  # (B, 1, 1, 1, 1)
    mse = (w * (pred.velocity.float() - v) ** 2).mean()
    if pred.mask_logits is None:
        return mse, {"mse": mse.item()}
    bce = (w * F.binary_cross_entropy_with_logits(pred.mask_logits.float(), changed, reduction="none")).mean()
    return mse + mask_weight * bce, {"mse": mse.item(), "mask_bce": bce.item()}


def keep_source(x: torch.Tensor, source: torch.Tensor, mask_logits: torch.Tensor | None,
                threshold: float = 0.5) -> torch.Tensor:
    """The sample with every pixel the last blend mask calls kept (m < threshold) set to the source."""
    if mask_logits is None:
        return x
    logit = math.log(threshold / (1 - threshold))
    return torch.where(mask_logits < logit, source, x)  # (B, 1, ...) broadcasts over channels
