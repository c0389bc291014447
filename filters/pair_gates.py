"""Quality gates of an edit pair: pure functions from frames and masks to numbers, and one frozen
config of thresholds that turns the numbers into pass/fail.

Every gate gives a `GateValue` (value, passed, reason), so a pair row can store each value and the
names of the gates it passed; a gate that cannot run (no real CLIP weights, no VLM configured) is
`passed=None` with the reason, never a silent pass. "Inside" and "outside" follow the edit's region:
for a background change the edited part is outside the object's mask.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from filters.base import FilterError
from manifests.schema import NO_MODEL, RANDOM_INIT


@dataclass(frozen=True)
class PairGateConfig:
    """Thresholds of the pair gates (PSNR in dB, SSIM and fractions 0-1, flicker in 0-255 grey levels)."""

    min_mask_area: float = 0.005  # mean fraction of the frame the mask covers
    max_mask_area: float = 0.6
    min_mask_iou: float = 0.5  # mean IoU of consecutive masks: a mask that jumps is a bad track
    min_connected: float = 0.9  # mean share of a frame's mask in its largest connected piece: one object, not shards
    max_area_cv: float = 0.5  # coefficient of variation of the mask's area over the frames it is in: no breathing
    min_boundary_edge: float = 0.85  # mean share of the mask's outline on an image edge or a motion edge
    edge_gradient: float = 60.0  # Sobel magnitude of the grey frame (0-255 levels) that makes an image edge
    edge_motion: float = 12.0  # abs grey change to a neighbouring frame that makes a motion edge
    min_psnr_kept: float = 35.0  # where the edit must not change pixels
    max_psnr_edited: float = 30.0  # where it must: lower PSNR = a stronger, visible edit
    max_ssim_edited: float = 0.98
    max_flicker: float = 4.0  # extra frame-to-frame change the edit adds, mean abs grey level
    min_clip_direction: float = 0.05  # cosine of image-change vs text-change directions
    min_vlm_score: float = 0.5
    kept_margin_px: int = 4  # pixels by the mask edge left out of "kept": 2 chroma samples at 4:2:0, a 4x4 transform

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise FilterError(f"pair gate {f.name} must be a finite number, got {v!r}")
        for name in ("min_mask_area", "max_mask_area", "min_mask_iou", "max_ssim_edited", "min_vlm_score",
                     "min_connected", "min_boundary_edge"):
            if not 0 <= getattr(self, name) <= 1:
                raise FilterError(f"pair gate {name} is a fraction and must be in [0, 1], got {getattr(self, name)}")
        if self.min_mask_area > self.max_mask_area:
            raise FilterError(f"min_mask_area={self.min_mask_area} is greater than max_mask_area={self.max_mask_area}")
        if min(self.max_area_cv, self.edge_gradient, self.edge_motion) < 0:
            raise FilterError("max_area_cv, edge_gradient and edge_motion must be >= 0")
        if self.kept_margin_px < 0:
            raise FilterError(f"kept_margin_px must be >= 0, got {self.kept_margin_px}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> PairGateConfig:
        """Build from a config mapping; an unknown key is an error (a typo must not disable a gate)."""
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise FilterError(f"unknown pair gate(s) {', '.join(unknown)}")
        return cls(**values)


@dataclass(frozen=True)
class GateValue:
    value: float | None
    passed: bool | None  # None: not gated (did not run, or a value recorded only); reason says why
    reason: str = ""


def _check(frames: np.ndarray, name: str) -> None:
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise FilterError(f"{name}: expected uint8 frames (T, H, W, 3), got {getattr(frames, 'shape', frames)}")


def mask_area_fraction(mask: np.ndarray) -> float:
    """Mean fraction of the frame covered by a (T, H, W) bool mask, over all frames."""
    return float(np.asarray(mask, bool).mean())


def mask_temporal_iou(mask: np.ndarray) -> float:
    """Mean IoU of consecutive frames' masks, over pairs where either is non-empty (1.0 if none)."""
    m = np.asarray(mask, bool)
    inter = (m[1:] & m[:-1]).sum(axis=(1, 2))
    union = (m[1:] | m[:-1]).sum(axis=(1, 2))
    used = union > 0
    return float((inter[used] / union[used]).mean()) if used.any() else 1.0


def _visible(mask: np.ndarray) -> np.ndarray:
    m = np.asarray(mask, bool)
    return m[m.any(axis=(1, 2))]


def mask_connected(mask: np.ndarray) -> float:
    """Mean over the frames where the (T, H, W) mask is visible of the share of its pixels in its largest
    8-connected piece: 1.0 for one solid object, low for a track that is scattered shards (1.0 if never visible)."""
    shares = []
    for m in _visible(mask):
        n, labels, stats, _ = cv2.connectedComponentsWithStats(m.astype(np.uint8), connectivity=8)
        shares.append(stats[1:, cv2.CC_STAT_AREA].max() / stats[1:, cv2.CC_STAT_AREA].sum())
    return float(np.mean(shares)) if shares else 1.0


def mask_area_cv(mask: np.ndarray) -> float:
    """Coefficient of variation (std / mean) of the mask's pixel count over the frames it is visible in: a mask
    that breathes (grows and shrinks with noise) scores high, a rigid object crossing the frame low. Frames
    where the mask touches the image border are left out while others remain: an object entering or leaving
    the picture loses area to the frame edge, not by breathing."""
    seen = _visible(mask)
    border = seen[:, 0].any(axis=1) | seen[:, -1].any(axis=1) | seen[:, :, 0].any(axis=1) | seen[:, :, -1].any(axis=1)
    areas = (seen[~border] if (~border).sum() > 1 else seen).sum(axis=(1, 2)).astype(np.float64)
    return float(areas.std() / areas.mean()) if len(areas) > 1 else 0.0


def edge_map(frames: np.ndarray, t: int, cfg: PairGateConfig) -> np.ndarray:
    """(H, W) bool: pixels of frame t on an image edge (grey Sobel magnitude) or a motion edge (grey change to
    the previous or next frame)."""
    grey = lambda i: cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY).astype(np.float32)  # noqa: E731
    g = grey(t)
    edges = cv2.magnitude(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)) >= cfg.edge_gradient
    for n in (t - 1, t + 1):
        if 0 <= n < len(frames):
            edges |= np.abs(g - grey(n)) >= cfg.edge_motion
    return edges


def mask_boundary_edge(frames: np.ndarray, mask: np.ndarray, cfg: PairGateConfig, max_frames: int = 12) -> float:
    """Mean share of the mask's outline within a few pixels of an image or motion edge, over up to `max_frames`
    visible frames evenly spread: a real object's outline follows what the eye sees as its border; a blob cut
    out of flat background does not (1.0 if never visible). The tolerance scales with the frame (masks are
    often found at a lower resolution and scaled up)."""
    _check(frames, "frames")
    m = np.asarray(mask, bool)
    visible = np.flatnonzero(m.any(axis=(1, 2)))
    if not len(visible):
        return 1.0
    tol = max(2, round(0.012 * min(m.shape[1:])))
    near = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tol + 1,) * 2)
    ring = np.ones((3, 3), np.uint8)
    shares = []
    for t in visible[np.unique(np.linspace(0, len(visible) - 1, min(max_frames, len(visible))).round().astype(int))]:
        mt = m[t].astype(np.uint8)
        outline = (mt > 0) & (cv2.erode(mt, ring, borderType=cv2.BORDER_REPLICATE) == 0)
        if not outline.any():
            continue
        close = cv2.dilate(edge_map(frames, int(t), cfg).astype(np.uint8), near) > 0
        shares.append(float(close[outline].mean()))
    return float(np.mean(shares)) if shares else 1.0


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    """PSNR (dB) of uint8 frames over pixels where `where` (T, H, W) holds; inf when equal, nan when empty."""
    diff = a.astype(np.float64) - b.astype(np.float64)  # (T, H, W, 3)
    if where is not None:
        diff = diff[where]
    if diff.size == 0:
        return float("nan")
    mse = float(np.mean(diff**2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM (T, H, W) of the grey frames, Gaussian window sigma 1.5 (Wang et al. 2004)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    out = []
    for fa, fb in zip(a, b):
        x = cv2.cvtColor(fa, cv2.COLOR_RGB2GRAY).astype(np.float64)
        y = cv2.cvtColor(fb, cv2.COLOR_RGB2GRAY).astype(np.float64)
        blur = lambda z: cv2.GaussianBlur(z, (0, 0), 1.5)  # noqa: E731
        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        out.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2)))
    return np.stack(out)


def edit_regions(mask: np.ndarray | None, region: str, shape: tuple[int, int, int], margin_px: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(edited, kept) (T, H, W) bool for an edit of `region`; kept leaves out a margin around the mask."""
    if region == "global" or mask is None:
        return np.ones(shape, bool), np.zeros(shape, bool)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin_px + 1,) * 2)
    grown = np.stack([cv2.dilate(m.astype(np.uint8), kernel) > 0 for m in mask]) if margin_px else mask
    shrunk = ~np.stack([cv2.dilate((~m).astype(np.uint8), kernel) > 0 for m in mask]) if margin_px else mask
    if region == "inside":
        return mask, ~grown
    if region == "outside":
        return ~mask, shrunk
    raise FilterError(f"region must be inside, outside or global, got {region!r}")


def edit_strength(source: np.ndarray, target: np.ndarray, mask: np.ndarray | None, region: str,
                  margin_px: int = 4) -> dict[str, float]:
    """PSNR and SSIM of target vs source in the edited part and in the kept part (nan where empty)."""
    _check(source, "source")
    _check(target, "target")
    if source.shape != target.shape:
        raise FilterError(f"source {source.shape} and target {target.shape} differ in shape")
    edited, kept = edit_regions(mask, region, source.shape[:3], margin_px)
    ssim = ssim_map(source, target)
    mean = lambda m: float(ssim[m].mean()) if m.any() else float("nan")  # noqa: E731
    return {"psnr_edited": psnr(source, target, edited), "psnr_kept": psnr(source, target, kept),
            "ssim_edited": mean(edited), "ssim_kept": mean(kept)}


def temporal_flicker(source: np.ndarray, target: np.ndarray) -> float:
    """Mean over frame steps of how much the target's mean abs frame difference exceeds the source's
    (grey levels): frame-to-frame change the edit added. Less change (a still backdrop, a blur) is
    not flicker. 0 for one frame."""
    if len(target) < 2:
        return 0.0
    grey = lambda f: np.stack([cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in f]).astype(np.float32)  # noqa: E731
    dt = np.abs(np.diff(grey(target), axis=0)).mean(axis=(1, 2))  # (T-1,)
    ds = np.abs(np.diff(grey(source), axis=0)).mean(axis=(1, 2))
    return float(np.maximum(dt - ds, 0).mean())


class ClipEncoder(Protocol):
    """What the CLIP direction gate needs from a CLIP model (the model stage's open_clip wrapper)."""

    weights_id: str

    def encode_images(self, frames: np.ndarray) -> np.ndarray: ...  # (N, H, W, 3) uint8 -> (N, D)

    def encode_texts(self, texts: list[str]) -> np.ndarray: ...  # -> (N, D)


def direction_score(img_source: np.ndarray, img_target: np.ndarray, txt_source: np.ndarray,
                    txt_target: np.ndarray) -> float:
    """CLIP directional similarity: cosine of (target - source) image and text embedding changes (each (D,))."""
    unit = lambda v: v / max(float(np.linalg.norm(v)), 1e-12)  # noqa: E731
    di = unit(unit(img_target) - unit(img_source))
    dt = unit(unit(txt_target) - unit(txt_source))
    return float(di @ dt)


def clip_direction_gate(encoder: ClipEncoder | None, source: np.ndarray, target: np.ndarray,
                        source_text: str, target_text: str, cfg: PairGateConfig) -> GateValue:
    """CLIP direction of the pair (mean frame embeddings); skipped unless real CLIP weights are loaded."""
    if encoder is None:
        return GateValue(None, None, "skipped: no CLIP model configured")
    if encoder.weights_id in ("", NO_MODEL, RANDOM_INIT):
        return GateValue(None, None, f"skipped: CLIP weights are {encoder.weights_id or 'missing'}, not trained")
    img = encoder.encode_images(np.concatenate([source, target]))  # (2T, D)
    txt = encoder.encode_texts([source_text, target_text])  # (2, D)
    t = len(source)
    value = direction_score(img[:t].mean(0), img[t:].mean(0), txt[0], txt[1])
    return GateValue(value, value >= cfg.min_clip_direction)


VlmCheck = Callable[[np.ndarray, np.ndarray, str], float]
"""(source frames, target frames, instruction) -> score in [0, 1]: does the target follow the instruction?"""


def vlm_instruction_gate(check: VlmCheck | None, source: np.ndarray, target: np.ndarray, instruction: str,
                         cfg: PairGateConfig) -> GateValue:
    """The VLM's instruction-following score; skipped without a VLM, failed (with reason) on a bad answer."""
    if check is None:
        return GateValue(None, None, "skipped: no VLM configured")
    try:
        value = float(check(source, target, instruction))
    except Exception as exc:  # noqa: BLE001 - a remote model may fail any way; the pair is kept, the gate says why
        return GateValue(None, None, f"skipped: VLM check failed ({type(exc).__name__}: {exc})"[:200])
    if not 0 <= value <= 1:
        return GateValue(None, None, f"skipped: VLM score {value!r} is outside [0, 1]")
    return GateValue(value, value >= cfg.min_vlm_score)


def object_gates(frames: np.ndarray, mask: np.ndarray, cfg: PairGateConfig) -> dict[str, GateValue]:
    """The gates that ask whether a tracked mask is one object: its size and steadiness (area, consecutive
    IoU), one connected piece, a stable area, an outline on image or motion edges. `frames` is the clip
    the mask was tracked in (for an addition, the target)."""
    area, iou = mask_area_fraction(mask), mask_temporal_iou(mask)
    connected, area_cv = mask_connected(mask), mask_area_cv(mask)
    boundary = mask_boundary_edge(frames, mask, cfg)
    return {"mask_area": GateValue(area, cfg.min_mask_area <= area <= cfg.max_mask_area),
            "mask_iou": GateValue(iou, iou >= cfg.min_mask_iou),
            "connected": GateValue(connected, connected >= cfg.min_connected),
            "area_cv": GateValue(area_cv, area_cv <= cfg.max_area_cv),
            "boundary_edge": GateValue(boundary, boundary >= cfg.min_boundary_edge)}


def evaluate_pair(source: np.ndarray, target: np.ndarray, mask: np.ndarray | None, region: str,
                  cfg: PairGateConfig, track: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, GateValue]:
    """The classical gates of one pair (the model gates are added by the caller that holds the models).
    `track`: (the clip, the tracked object's mask in it) of a local edit; the object gates run only with it.
    It is the object's own mask, not the edit's (a removal grows it), and an editor that drew its mask itself
    (rendered text) has none: its mask is exact by construction and need not be one piece."""
    out: dict[str, GateValue] = {}
    if track is not None:
        out.update(object_gates(*track, cfg))
    s = edit_strength(source, target, mask, region, cfg.kept_margin_px)
    # visible if colours moved (PSNR) or structure did (SSIM): a colour grade keeps the grey structure
    visible = s["psnr_edited"] <= cfg.max_psnr_edited or s["ssim_edited"] <= cfg.max_ssim_edited
    out["edit_strength"] = GateValue(s["psnr_edited"], visible)
    out["ssim_edited"] = GateValue(s["ssim_edited"], None, "recorded; gated through edit_strength")
    if region != "global":
        kept_ok = math.isnan(s["psnr_kept"]) or s["psnr_kept"] >= cfg.min_psnr_kept
        out["psnr_kept"] = GateValue(s["psnr_kept"], kept_ok)
        out["ssim_kept"] = GateValue(s["ssim_kept"], None, "recorded; gated through psnr_kept")
    flicker = temporal_flicker(source, target)
    out["flicker"] = GateValue(flicker, flicker <= cfg.max_flicker)
    return out


def gates_passed(values: Mapping[str, GateValue]) -> list[str]:
    """Names of the gates that ran and passed, sorted (the `gates_passed` column)."""
    return sorted(name for name, g in values.items() if g.passed)
