"""Turn a VideoPlan into RGB frames and exact per-object visible masks.

Backgrounds are crops moving over a photo (cv2.warpAffine, bilinear); transitions blend shot
contents in float; objects are hard-edged textured sprites pasted after blending, only inside the
pure part of their shot, so their masks are exact for every frame they are on screen.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from curation.corpus.photos import horse_silhouette, load_photo
from curation.corpus.plan import ObjectPlan, ShotPlan, TransitionPlan, VideoPlan


def _lerp(a, b, u: float):
    return tuple(x + (y - x) * u for x, y in zip(a, b))


def camera_frame(shot: ShotPlan, t: int, width: int, height: int) -> np.ndarray:
    """Background of `shot` at frame `t`: its crop window interpolated along the shot, scaled to the output."""
    span = max(1, shot.content_end - shot.content_start - 1)
    u = min(1.0, max(0.0, (t - shot.content_start) / span))
    u = u * u * (3 - 2 * u)  # smoothstep: the camera eases in and out like a real move
    x0, y0, w, h = _lerp(shot.camera.start, shot.camera.end, u)
    m = np.array([[w / width, 0.0, x0], [0.0, h / height, y0]], np.float64)
    return cv2.warpAffine(load_photo(shot.photo), m, (width, height),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)


def _shot_at(shots: tuple[ShotPlan, ...], t: int) -> list[ShotPlan]:
    return [s for s in shots if s.content_start <= t < s.content_end]


def transition_weights(tr: TransitionPlan, t: int) -> tuple[float, float]:
    """(weight of the outgoing shot, weight of the incoming shot) at frame t inside `tr`."""
    n = tr.end - tr.start
    if tr.kind == "dissolve":
        b = (t - tr.start + 1) / (n + 1)
        return 1.0 - b, b
    ramp = (n - tr.hold) // 2
    k = t - tr.start
    if k < ramp:
        return 1.0 - (k + 1) / (ramp + 1), 0.0
    if k < ramp + tr.hold:
        return 0.0, 0.0
    return 0.0, (k - ramp - tr.hold + 1) / (ramp + 1)


def background(plan: VideoPlan, t: int) -> np.ndarray:
    """The frame at t before objects: one shot, or a dissolve/fade of two."""
    active = _shot_at(plan.shots, t)
    tr = next((x for x in plan.transitions if x.start <= t < x.end), None)
    if tr is None:
        return camera_frame(active[0], t, plan.width, plan.height)
    w_out, w_in = transition_weights(tr, t)
    acc = np.zeros((plan.height, plan.width, 3), np.float32)
    for shot in active:
        weight = w_out if shot.pure_end <= tr.start else w_in
        if weight > 0:
            acc += weight * camera_frame(shot, t, plan.width, plan.height).astype(np.float32)
    return np.clip(acc + 0.5, 0, 255).astype(np.uint8)


def _shape_mask(shape: str, w: int, h: int) -> np.ndarray:
    if shape == "rectangle":
        return np.ones((h, w), bool)
    if shape == "horse":
        return cv2.resize(horse_silhouette().astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
    yy, xx = np.mgrid[0:h, 0:w]
    return ((xx + 0.5 - w / 2) / (w / 2)) ** 2 + ((yy + 0.5 - h / 2) / (h / 2)) ** 2 <= 1.0


def sprite(obj: ObjectPlan, t: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(texture RGB, mask, left, top) of `obj` at frame t, in output pixel coordinates (may be off-frame)."""
    u = (t - obj.first) / max(1, obj.last - obj.first - 1)
    scale = obj.scale_start + (obj.scale_end - obj.scale_start) * u
    w, h = max(4, round(obj.size[0] * scale)), max(4, round(obj.size[1] * scale))
    cx, cy = _lerp(obj.centre_start, obj.centre_end, u)
    x0, y0, tw, th = obj.texture_box
    tex = cv2.resize(load_photo(obj.texture)[y0 : y0 + th, x0 : x0 + tw], (w, h), interpolation=cv2.INTER_AREA)
    return tex, _shape_mask(obj.shape, w, h), int(round(cx - w / 2)), int(round(cy - h / 2))


def paste(frame: np.ndarray, tex: np.ndarray, mask: np.ndarray, left: int, top: int) -> np.ndarray:
    """Paste the sprite into `frame` in place; return its visible mask at frame size (all False if off-frame)."""
    H, W = frame.shape[:2]
    h, w = mask.shape
    full = np.zeros((H, W), bool)
    fx0, fy0, fx1, fy1 = max(0, left), max(0, top), min(W, left + w), min(H, top + h)
    if fx0 >= fx1 or fy0 >= fy1:
        return full
    sub = mask[fy0 - top : fy1 - top, fx0 - left : fx1 - left]
    region = frame[fy0:fy1, fx0:fx1]
    region[sub] = tex[fy0 - top : fy1 - top, fx0 - left : fx1 - left][sub]
    full[fy0:fy1, fx0:fx1] = sub
    return full


def render(plan: VideoPlan) -> Iterator[tuple[np.ndarray, dict[int, np.ndarray]]]:
    """Yield (frame RGB uint8, {object id: visible mask}) per frame; objects later in the plan occlude earlier ones."""
    for t in range(plan.frames):
        frame = background(plan, t)
        masks: dict[int, np.ndarray] = {}
        for obj in plan.objects:
            if obj.first <= t < obj.last:
                visible = paste(frame, *sprite(obj, t))
                for other in masks.values():
                    other &= ~visible
                masks[obj.id] = visible
        yield frame, {k: v for k, v in masks.items() if v.any()}
