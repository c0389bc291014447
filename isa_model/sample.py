"""Sampling: Euler steps along the rectified-flow path with classifier-free guidance on the instruction,
optionally through the context K/V cache; loading a trained model; editing a user's clip.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from isa_model import checkpoint as ck
from isa_model import objective
from isa_model.config import Config, ConfigError
from isa_model.data import sample_box, to_bucket
from isa_model.layout import instruction_layout
from isa_model.model import LIVEditor


def load_model(ckpt_path: str | Path, device: torch.device, wanted: Config | None = None, which: str = "ema",
               **model_changes) -> tuple[LIVEditor, Config]:
    """The model of a checkpoint (EMA weights by default); `model_changes` switch modes (attention, backend).

    Nothing is allocated before the checkpoint's config is within bounds and every tensor shape in its weights'
    header is the one that config implies (taken from the model built on the meta device). The text tower is
    built without its `text_weights` file: the checkpoint's own weights replace it."""
    ckpt = ck.latest(Path(ckpt_path))
    if ckpt is None:
        raise ConfigError(f"{ckpt_path}: no checkpoint found")
    cfg, _ = ck.read_config(ckpt)
    if wanted is not None:
        ck.check_same_model(cfg, wanted, ckpt)
    isa = dataclasses.replace(cfg.model.isa, **model_changes.pop("isa", {}))
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, isa=isa, **model_changes))
    build = dataclasses.replace(cfg.model, text_weights="")
    with torch.device("meta"):
        expected = ck.shapes_of(LIVEditor(build).state_dict())
    weights = ck.load_weights(ckpt, which, expected)
    model = LIVEditor(build)
    model.load_state_dict(weights)
    return model.to(device).eval(), cfg


@torch.no_grad()
def euler_sample(model: LIVEditor, source: torch.Tensor, tokens: torch.Tensor, noise: torch.Tensor, steps: int,
                 guidance: float = 1.0, use_cache: bool = True, start_t: float = 1.0,
                 mask_threshold: float = 0.5, box: torch.Tensor | None = None,
                 layout: torch.Tensor | None = None) -> torch.Tensor:
    """Integrate the model's path (objective.py) from t = start_t to the edit at t = 0. source, noise:
    (B, C, T, H, W); tokens (B, L).

    The path starts at the noise or at the source (the model's objective; `delta` takes one step). `start_t` < 1
    (noise objective only) starts from the source noised to start_t, `(1 - start_t) source + start_t noise`
    (SDEdit). With guidance != 1 the conditional and the empty-instruction branches run as one doubled batch.
    In context-cache mode (and use_cache) the source K/V are computed once here and reused at every step. With
    a blend mask, the pixels whose last mask is under `mask_threshold` are the source's. `box` (B, 3, 2): where
    each sample lies in its clip (`data.sample_box`; None: the whole clip), for a model with clip_coords or
    layout; `layout` (B, 7): the place each instruction names (`layout.instruction_layout`; None: none), for a
    model with layout. The empty instruction of the guidance branch names no place."""
    mcfg = model.cfg
    steps = objective.sampling_steps(mcfg.objective, steps)
    if start_t < 1.0 and mcfg.objective != "noise":
        raise ValueError("start_t < 1 (sampling from the noised source) is for the noise objective")
    b = source.shape[0]
    x = objective.path_start(mcfg.objective, source, noise) if start_t >= 1.0 else (1 - start_t) * source + start_t * noise
    x = x.float()  # (B, C, T, H, W)
    text = model.encode_text(tokens.to(source.device))  # (B, dim), or (B, 1 + L, dim) with text_attention
    src = source
    if guidance != 1.0:
        empty = model.text.tokenize([""]).to(source.device).expand(b, -1)
        text = torch.cat([text, model.encode_text(empty)])  # (2B, ...)
        src = torch.cat([source, source])
        box = None if box is None else torch.cat([box, box])
        layout = None if layout is None else torch.cat([layout, torch.zeros_like(layout)])
    cache = model.encode_context(src, text, box, layout) if mcfg.context_cache and use_cache else None
    ts = torch.linspace(min(start_t, 1.0), 0.0, steps + 1, device=noise.device)
    logits = None
    for i in range(steps):
        xin = torch.cat([x, x]) if guidance != 1.0 else x
        t = ts[i].expand(xin.shape[0])
        raw = model.forward_cached(xin, t, text, cache) if cache is not None else model(xin, t, src, text, box, layout)
        pred = objective.split_output(raw, mcfg.channels, mcfg.blend_mask)
        v = pred.velocity.float()  # (B or 2B, C, T, H, W)
        logits = None if pred.mask_logits is None else pred.mask_logits[:b]  # the conditional branch's
        if guidance != 1.0:
            v_cond, v_null = v.chunk(2)
            v = v_null + guidance * (v_cond - v_null)
        x = x - (ts[i] - ts[i + 1]) * v
    return objective.keep_source(x, source.float(), logits, mask_threshold).clamp(-1, 1)


def edit_video(ckpt_path: str | Path, video: str | Path, instruction: str, out: str | Path, steps: int = 16,
               guidance: float | None = None, seed: int = 0) -> Path:
    """Edit the first clip-length frames of a user's video; writes source | edit side by side as mp4. Guidance
    defaults to the config's (1.0 for the bridge from the source, 1.5 for the noise objective's runs)."""
    from manifests.media.decode import read_frames
    from manifests.media.encode import VideoWriter
    from manifests.media.probe import VideoError, probe

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, cfg = load_model(ckpt_path, device)
    try:
        info = probe(video)
        idx = [min(i, info.frames - 1) for i in range(cfg.model.frames)]
        frames = read_frames(video, idx)  # (T, H, W, 3)
    except VideoError as exc:
        raise ConfigError(str(exc)) from None
    clip = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1  # (T, 3, H, W)
    source = to_bucket(clip, cfg.model.height, cfg.model.width, 0.5, 0.5).transpose(0, 1)[None].to(device)
    box = torch.from_numpy(sample_box(info.frames, idx, (clip.shape[-2], clip.shape[-1]), cfg.model.height,
                                      cfg.model.width, 0.5, 0.5))[None]  # (1, 3, 2)
    tokens = model.text.tokenize([instruction])
    layout = torch.from_numpy(instruction_layout(instruction))[None]  # (1, 7)
    noise = torch.randn(source.shape, generator=torch.Generator().manual_seed(seed)).to(device)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
        pred = euler_sample(model, source, tokens, noise, steps, cfg.train.guidance if guidance is None else guidance,
                            mask_threshold=cfg.train.mask_threshold, box=box, layout=layout)
    pair = torch.cat([source, pred], dim=-1)[0]  # (C, T, H, 2W)
    rgb = ((pair.permute(1, 2, 3, 0).float().cpu().numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
    out = Path(out)
    with VideoWriter(out, fps=info.fps or 12.0) as writer:
        for frame in rgb:
            writer.write(frame)
    return out
