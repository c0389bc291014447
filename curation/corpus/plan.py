"""Random but seeded plans of synthetic videos: shots, camera moves, transitions and moving objects.

A plan is pure data; rendering it (render.py) and writing its ground truth (truth.py) both read the
same plan, so the truth is exact by construction. Video `i` of seed `s` is drawn from its own RNG
stream, so it is the same whether the corpus has 3 videos or 200.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from curation.corpus.photos import PHOTOS

# Resolutions (width, height) and frame rates cycled over the corpus so every one appears early.
RESOLUTIONS = ((320, 240), (480, 270), (640, 360), (256, 144), (180, 320))
QUICK_RESOLUTIONS = ((256, 144), (320, 240), (180, 320))
FRAME_RATES = (Fraction(25), Fraction(30000, 1001), Fraction(24), Fraction(30))
# Transition kinds cycled over the corpus (then shuffled lengths), so a 3-video corpus has all kinds.
TRANSITION_CYCLE = ("cut", "dissolve", "cut", "fade", "cut", "dissolve", "cut")
SHAPES = ("disc", "ellipse", "rectangle", "horse")


@dataclass(frozen=True)
class CameraMove:
    """Crop windows (x0, y0, w, h) in photo pixels at the shot's first and last content frame."""

    start: tuple[float, float, float, float]
    end: tuple[float, float, float, float]
    kind: str  # "pan" or "zoom"


@dataclass(frozen=True)
class ShotPlan:
    photo: str
    camera: CameraMove
    content_start: int  # first frame where this shot's pixels appear (inside an incoming transition)
    content_end: int  # exclusive; past pure_end when an outgoing dissolve/fade uses it
    pure_start: int  # the shot proper: frames outside any transition
    pure_end: int


@dataclass(frozen=True)
class TransitionPlan:
    kind: str  # "cut", "dissolve" or "fade"
    start: int  # half-open [start, end); a cut has start == end == first frame of the new shot
    end: int
    hold: int = 0  # fade only: black frames between fade-out and fade-in


@dataclass(frozen=True)
class ObjectPlan:
    id: int
    shape: str  # disc, ellipse, rectangle, horse (the label in the truth file)
    texture: str  # photo the object's pixels come from
    texture_box: tuple[int, int, int, int]  # x0, y0, w, h crop of the texture photo
    size: tuple[int, int]  # base (w, h) in output pixels
    first: int  # the shot's pure frames [first, last): the object is drawn there (visible when inside the frame)
    last: int
    centre_start: tuple[float, float]
    centre_end: tuple[float, float]
    scale_start: float
    scale_end: float


@dataclass(frozen=True)
class VideoPlan:
    name: str
    width: int
    height: int
    fps: Fraction
    frames: int
    shots: tuple[ShotPlan, ...]
    transitions: tuple[TransitionPlan, ...]
    objects: tuple[ObjectPlan, ...]


def _camera(rng: np.random.Generator, photo_hw: tuple[int, int], aspect: float) -> CameraMove:
    ph, pw = photo_hw
    full_w = min(pw, ph * aspect)  # largest crop of the output aspect that fits the photo

    def window(scale: float) -> tuple[float, float, float, float]:
        w = full_w * scale
        h = w / aspect
        return (float(rng.uniform(0, pw - w)), float(rng.uniform(0, ph - h)), float(w), float(h))

    if rng.random() < 0.5:
        scale = float(rng.uniform(0.45, 0.8))
        return CameraMove(window(scale), window(scale), "pan")
    a, b = float(rng.uniform(0.4, 0.6)), float(rng.uniform(0.8, 1.0))
    if rng.random() < 0.5:
        a, b = b, a
    return CameraMove(window(a), window(b), "zoom")


def _transition_lengths(kind: str, rng: np.random.Generator, fps: float) -> tuple[int, int]:
    """Frames of the transition and, for fades, the black hold inside it."""
    if kind == "cut":
        return 0, 0
    if kind == "dissolve":
        return int(rng.integers(int(0.4 * fps), int(0.8 * fps) + 1)), 0
    ramp = int(rng.integers(int(0.25 * fps), int(0.45 * fps) + 1))
    hold = int(rng.integers(0, 4))
    return 2 * ramp + hold, hold


def _objects(rng, shots, width, height, first_id, photos_used) -> list[ObjectPlan]:
    out: list[ObjectPlan] = []
    for shot in shots:
        if rng.random() < 0.35:
            continue
        for _ in range(int(rng.integers(1, 3))):
            # on screen for the whole shot proper: objects enter and leave by moving, never by popping
            first, last = shot.pure_start, shot.pure_end
            shape = SHAPES[int(rng.integers(len(SHAPES)))]
            base = float(rng.uniform(0.18, 0.35)) * min(width, height)
            aspect = {"disc": 1.0, "horse": 1.2}.get(shape, float(rng.uniform(0.6, 1.8)))
            size = (max(8, int(base * aspect)), max(8, int(base)))
            choices = [p for p in PHOTOS if p != shot.photo]
            texture = choices[int(rng.integers(len(choices)))]
            th, tw = photos_used(texture)
            cw, ch = int(min(tw, th) * rng.uniform(0.3, 0.6)), int(min(tw, th) * rng.uniform(0.3, 0.6))
            tbox = (int(rng.integers(0, tw - cw + 1)), int(rng.integers(0, th - ch + 1)), cw, ch)
            enters = rng.random() < 0.4  # starts half outside the frame, then walks in

            def point(outside: bool, size: tuple[int, int] = size) -> tuple[float, float]:
                if outside:
                    x = float(rng.choice([-0.3 * size[0], width + 0.3 * size[0]]))
                    return (x, float(rng.uniform(0.2, 0.8) * height))
                return (float(rng.uniform(0.2, 0.8) * width), float(rng.uniform(0.25, 0.75) * height))

            out.append(ObjectPlan(
                id=first_id + len(out), shape=shape, texture=texture, texture_box=tbox, size=size,
                first=first, last=last, centre_start=point(enters), centre_end=point(rng.random() < 0.25),
                scale_start=float(rng.uniform(0.8, 1.2)), scale_end=float(rng.uniform(0.8, 1.2)),
            ))
    return out


def plan_video(seed: int, index: int, quick: bool, photo_hw) -> VideoPlan:
    """Draw the plan of video `index`; `photo_hw(name)` gives a photo's (height, width)."""
    rng = np.random.default_rng([seed, index])
    resolutions = QUICK_RESOLUTIONS if quick else RESOLUTIONS
    width, height = resolutions[index % len(resolutions)]
    fps = FRAME_RATES[index % len(FRAME_RATES)]
    fpsf = float(fps)
    n_shots = int(rng.integers(2, 4)) if quick else int(rng.integers(3, 6))
    shot_len = (0.8, 1.2) if quick else (0.8, 1.5)
    photos = [PHOTOS[int(i)] for i in rng.choice(len(PHOTOS), size=n_shots, replace=False)]
    if not quick and n_shots >= 3 and rng.random() < 0.3:
        photos[2] = photos[1]  # a cut to another view of the same photo: hard for colour histograms
    kinds = [TRANSITION_CYCLE[(index * 3 + k) % len(TRANSITION_CYCLE)] for k in range(n_shots - 1)]
    lengths = [int(rng.uniform(*shot_len) * fpsf) for _ in range(n_shots)]
    spans = [_transition_lengths(k, rng, fpsf) for k in kinds]
    shots: list[ShotPlan] = []
    transitions: list[TransitionPlan] = []
    t = 0
    for i in range(n_shots):
        pure_start, pure_end = t, t + lengths[i]
        t = pure_end
        content_start = pure_start
        if i > 0:
            prev = transitions[-1]
            ramp = (prev.end - prev.start - prev.hold) // 2  # a fade brings the new shot in over its last ramp
            content_start = prev.start if prev.kind == "dissolve" else prev.end - ramp
        content_end = pure_end
        if i < n_shots - 1:
            (span, hold), kind = spans[i], kinds[i]
            transitions.append(TransitionPlan(kind, pure_end, pure_end + span, hold))
            t = pure_end + span
            content_end = pure_end + (span if kind == "dissolve" else (span - hold) // 2)
        aspect = width / height
        camera = _camera(rng, photo_hw(photos[i]), aspect)
        shots.append(ShotPlan(photos[i], camera, content_start, content_end, pure_start, pure_end))
    objects = _objects(rng, shots, width, height, 1, photo_hw)
    name = f"synth_{index:03d}_{width}x{height}_{fpsf:.2f}fps".replace(".", "p")
    return VideoPlan(name, width, height, fps, t, tuple(shots), tuple(transitions), tuple(objects))
