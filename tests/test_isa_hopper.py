"""The warp-specialised Hopper kernels (kernels/isa_forward_hopper.py: both forward launches;
kernels/isa_backward_hopper.py: both dk/dv launches) against the torch oracle and against the Triton kernels
on the same inputs and plan.

GPU only: Gluon kernels do not run in Triton's CPU interpreter, and the kernel needs compute capability 9.x
(on other GPUs `supported` is false and the Triton kernel runs, which test_isa_kernels.py covers).
"""
import os
from dataclasses import replace

import pytest
import torch

from kernels import IsaConfig, TileConfig, isa_attention, isa_plan
from kernels.isa_forward_hopper import supported

if not (torch.cuda.is_available() and torch.cuda.get_device_capability()[0] == 9):
    pytest.skip("needs a Hopper GPU (Gluon kernels; the CPU interpreter runs only Triton)", allow_module_level=True)

# name: (B, H, n_tgt, n_ctx, D, target-only q, config). Token counts leave partial blocks in both parts.
CASES = {
    "full-q-tails-d128": (1, 3, 1000, 700, 128, False, IsaConfig()),
    "target-only-d64": (2, 2, 900, 1100, 64, True, IsaConfig(alpha_s=0.25)),
    "no-context": (1, 2, 1500, 0, 128, False, IsaConfig()),
    "odd-kept-count": (1, 1, 650, 650, 128, False, IsaConfig(alpha_s=0.125)),  # 11 + 2 kept blocks
    "per-head-padding": (1, 4, 1200, 900, 128, False, IsaConfig(per_head_alpha_f=True)),
    "every-source-block": (1, 2, 1100, 1100, 128, True, IsaConfig(alpha_s=1.0, dropped_mean=True)),
    "dropped-mean": (1, 2, 1000, 1300, 128, False, IsaConfig(dropped_mean=True)),  # mean tiles in sharp rows
    "block-sparse": (1, 2, 1000, 1000, 64, False, IsaConfig(mean_terms=False)),  # no mean tiles at all
}
# (tiles, dtype): the default tiles in both half types, the other ring shapes in bf16 (compilation dominates)
RUNS = {"default-bf16": (TileConfig(), torch.bfloat16), "default-fp16": (TileConfig(), torch.float16),
        "flat-s2-bf16": (TileConfig(hopper_flat_stages=2), torch.bfloat16),
        "kb1-s2-flat-s4-bf16": (TileConfig(hopper_key_blocks=1, hopper_stages=2, hopper_flat_stages=4), torch.bfloat16)}


def _qkv(b, h, n_q, n, d, dtype, seed):
    g = torch.Generator(device="cuda").manual_seed(seed)
    q = torch.randn(b, h, n_q, d, generator=g, device="cuda").to(dtype)
    k, v = (torch.randn(b, h, n, d, generator=g, device="cuda").to(dtype) for _ in range(2))
    return q, k, v


def _rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


@pytest.mark.parametrize("run", list(RUNS), ids=str)
@pytest.mark.parametrize("case", list(CASES), ids=str)
def test_hopper_forward_matches_oracle_and_triton_kernel(case, run):
    tiles, dtype = RUNS[run]
    b, h, n_tgt, n_ctx, d, target_only, cfg = CASES[case]
    seed = int.from_bytes(os.urandom(4), "little")
    q, k, v = _qkv(b, h, n_tgt if target_only else n_tgt + n_ctx, n_tgt + n_ctx, d, dtype, seed)
    plan = isa_plan(q, k, n_ctx, cfg)
    assert all(supported(q, w, plan.layout) for w in plan.fwd if w is not None), "must take the Hopper path"
    with torch.no_grad():
        out = isa_attention(q, k, v, n_ctx, plan=plan, tiles=tiles)
        one_stream = isa_attention(q, k, v, n_ctx, plan=plan, tiles=replace(tiles, flat_side_stream=False))
        triton_out = isa_attention(q, k, v, n_ctx, plan=plan, tiles=TileConfig(fwd_hopper=False))
        ref = isa_attention(q, k, v, n_ctx, plan=plan, backend="torch")
    tol = 2e-2 if dtype == torch.bfloat16 else 4e-3
    assert _rel(out, ref) < tol, f"seed {seed}"
    assert _rel(out, triton_out) < tol, f"seed {seed}"
    assert torch.isfinite(out).all()
    assert torch.equal(out, one_stream), "the flat launch on a side stream must not change the output"


def _grads(q, k, v, n_ctx, plan, grad, **kw):
    for x in (q, k, v):
        x.grad = None
    out = isa_attention(q, k, v, n_ctx, plan=plan, **kw)
    out.backward(grad)
    return [x.grad.clone() for x in (q, k, v)]


@pytest.mark.parametrize("case", list(CASES), ids=str)
def test_hopper_gradients_match_oracle_and_triton_kernels(case):
    """dq, dk, dv through the Hopper forward (its LSE) and the Hopper dk/dv equal the oracle's and those of
    the Triton kernels on the same plan."""
    b, h, n_tgt, n_ctx, d, target_only, cfg = CASES[case]
    seed = int.from_bytes(os.urandom(4), "little")
    q, k, v = _qkv(b, h, n_tgt if target_only else n_tgt + n_ctx, n_tgt + n_ctx, d, torch.bfloat16, seed)
    plan = isa_plan(q, k, n_ctx, cfg)
    q, k, v = (x.requires_grad_() for x in (q, k, v))
    grad = torch.randn_like(q)
    hopper = _grads(q, k, v, n_ctx, plan, grad)
    triton_kernels = _grads(q, k, v, n_ctx, plan, grad, tiles=TileConfig(fwd_hopper=False, dkdv_hopper=False))
    ref = _grads(q, k, v, n_ctx, plan, grad, backend="torch")
    for name, g, tg, rg in zip("qkv", hopper, triton_kernels, ref):
        assert torch.isfinite(g).all(), f"d{name} seed {seed}"
        assert _rel(g, rg) < 4e-2, f"d{name} seed {seed}"
        assert _rel(g, tg) < 4e-2, f"d{name} seed {seed}"
