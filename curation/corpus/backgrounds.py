"""What the corpus looks like behind its moving objects: the exact target of an object removal.

A plan is pure data, so the truth of "this video without object k" is the same plan without k,
rendered the same way; `static_camera` gives the variant of a plan whose camera does not move, the
easy case removal quality is first judged on.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from curation.corpus.plan import CameraMove, VideoPlan
from curation.corpus.render import render


def without_objects(plan: VideoPlan, object_ids: set[int]) -> VideoPlan:
    """The same video with the given objects never drawn (the others, and their occlusions, stay)."""
    return dataclasses.replace(plan, objects=tuple(o for o in plan.objects if o.id not in object_ids))


def static_camera(plan: VideoPlan) -> VideoPlan:
    """The same video with every shot's camera held at its first window (kind "static")."""
    shots = tuple(dataclasses.replace(s, camera=CameraMove(s.camera.start, s.camera.start, "static"))
                  for s in plan.shots)
    return dataclasses.replace(plan, shots=shots)


def render_range(plan: VideoPlan, start: int, end: int) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """(frames (T, H, W, 3) uint8, {object id: masks (T, H, W) bool}) of frames [start, end)."""
    frames: list[np.ndarray] = []
    masks: dict[int, np.ndarray] = {}
    for t, (frame, visible) in enumerate(render(plan)):
        if t >= end:
            break
        if t < start:
            continue
        frames.append(frame)
        for oid, m in visible.items():
            masks.setdefault(oid, np.zeros((end - start, plan.height, plan.width), bool))[t - start] = m
    return np.stack(frames), masks


def true_background(plan: VideoPlan, start: int, end: int) -> np.ndarray:
    """Frames [start, end) with no object drawn: what is behind every moving object."""
    return render_range(without_objects(plan, {o.id for o in plan.objects}), start, end)[0]


def removal_truth(plan: VideoPlan, object_id: int, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """(frames [start, end) without object `object_id`, (T, H, W) bool where the true background shows
    there). Where it does not, another object was hidden behind this one: no background fill can know it."""
    target = render_range(without_objects(plan, {object_id}), start, end)[0]
    return target, np.all(target == true_background(plan, start, end), axis=-1)
