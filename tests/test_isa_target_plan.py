"""Target-only queries (context K/V cache), reusable plans and the configuration options of ISA (plain
block-sparse top-k, per-head alpha_f from pooled sharpness).

Triton kernels (the interpreter on CPU: fp32/fp16 at tiny shapes; bf16/fp16 on GPU) against the torch
oracle and against float64 dense attention where every block is exact.
"""
import dataclasses
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest
from _isa_device import DEVICE, ON_GPU

from kernels import IsaConfig, IsaInputError, dense_attention_f64, isa_attention, isa_plan
from kernels.isa import _copied
from kernels.isa_blocks import block_masks, sharp_across_heads
from kernels.isa_config import TileConfig, keep_count
from kernels.isa_selection import key_launches

DTYPE = torch.bfloat16 if ON_GPU else torch.float32
REL_TOL = {torch.float32: 2e-5, torch.float16: 4e-3, torch.bfloat16: 2e-2}[DTYPE]

# name: (B, H, n_tgt, n_ctx, D, config)
CASES = {
    "tails": (1, 2, 90, 60, 16, IsaConfig(block=16, alpha_s=0.25, alpha_f=0.5, alpha_ns=0.2)),
    "dropped-mean": (1, 1, 100, 70, 16, IsaConfig(block=16, alpha_s=0.25, alpha_ns=0.2, dropped_mean=True)),
    "block-sparse": (2, 1, 96, 50, 32, IsaConfig(block=16, alpha_s=0.25, alpha_ns=0.2, mean_terms=False)),
    "per-head": (1, 3, 90, 60, 16, IsaConfig(block=16, alpha_s=0.25, alpha_ns=0.2, per_head_alpha_f=True)),
}
if ON_GPU:
    CASES["gpu-large"] = (1, 3, 2000, 1800, 128, IsaConfig())


def _qkv(b, h, n, d, seed, dtype=DTYPE):
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    return [torch.randn(b, h, n, d, generator=g, device=DEVICE).to(dtype).requires_grad_() for _ in range(3)]


def _rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def _out_and_grads(q, k, v, n_ctx, grad, **kw):
    for x in (q, k, v):
        x.grad = None
    out = isa_attention(q, k, v, n_ctx, **kw)
    out.backward(grad)
    return out.detach().clone(), [x.grad.clone() for x in (q, k, v)]


@pytest.mark.parametrize("case", list(CASES), ids=str)
def test_target_only_kernel_matches_oracle(case):
    b, h, n_tgt, n_ctx, d, cfg = CASES[case]
    seed = int.from_bytes(os.urandom(4), "little")
    _, k, v = _qkv(b, h, n_tgt + n_ctx, d, seed)
    q = _qkv(b, h, n_tgt, d, seed + 1)[0]
    grad = torch.randn(b, h, n_tgt, d, device=DEVICE).to(DTYPE)
    out, grads = _out_and_grads(q, k, v, n_ctx, grad, config=cfg)
    ref, ref_grads = _out_and_grads(q, k, v, n_ctx, grad, config=cfg, backend="torch")
    assert out.shape == q.shape and out.dtype == DTYPE
    assert _rel(out, ref) < REL_TOL, f"seed {seed}"
    for name, g, rg in zip("qkv", grads, ref_grads):
        assert _rel(g, rg) < 2 * REL_TOL, f"d{name} seed {seed}"


def test_target_only_all_exact_equals_dense_target_rows():
    q, k, v = _qkv(1, 2, 150, 16, seed=21)
    dense = dense_attention_f64(q, k, v)[:, :, :90]
    for backend in ("triton", "torch"):
        out = isa_attention(q[:, :, :90], k, v, 60, block=16, alpha_s=1.0, alpha_f=1.0, backend=backend)
        assert _rel(out, dense) < REL_TOL, backend


def test_target_only_equals_full_queries_when_every_target_block_is_sharp():
    """Pre-selection looks at target query blocks only, so with alpha_f = 1 the target rows agree."""
    q, k, v = _qkv(1, 2, 150, 16, seed=22)
    cfg = IsaConfig(block=16, alpha_s=0.25, alpha_f=1.0)
    full = isa_attention(q, k, v, 60, config=cfg, backend="torch")
    tgt = isa_attention(q[:, :, :90], k, v, 60, config=cfg)
    assert _rel(tgt, full[:, :, :90]) < REL_TOL


def test_target_only_sharpness_ranked_among_target_blocks():
    q, k, _ = _qkv(2, 2, 330, 16, seed=23, dtype=torch.float32)
    cfg = IsaConfig(block=16, alpha_s=0.25, alpha_f=0.5, alpha_ns=0.2)
    plan = isa_plan(q[:, :, :200].detach(), k.detach(), 130, config=cfg)
    sel, layout = plan.selection, plan.layout
    assert layout.target_only and layout.nbq == layout.nbt == 13
    assert sel.sharp.shape[-1] == keep_count(0.5, 13) and int(sel.sharp.max()) < 13
    assert sel.flat.shape[-1] == 13 - keep_count(0.5, 13)
    exact, mean = block_masks(sel)
    assert exact.shape == mean.shape == (2, 2, 13, layout.nb)
    assert plan.mask.shape == (2 * 2 * 13, 1)  # 22 key blocks: one word of bits per query block


def test_reused_plan_gives_the_same_output_and_gradients():
    q, k, v = _qkv(1, 1, 96, 16, seed=24)
    cfg = IsaConfig(block=16, alpha_s=0.5, alpha_ns=0.2)
    grad = torch.randn(1, 1, 96, 16, device=DEVICE).to(DTYPE)
    plan = isa_plan(q, k, 32, config=cfg)
    fresh, fresh_grads = _out_and_grads(q, k, v, 32, grad, config=cfg)
    for _ in range(2):  # the plan is not consumed by a call
        reused, reused_grads = _out_and_grads(q, k, v, 32, grad, plan=plan)
        torch.testing.assert_close(reused, fresh, rtol=0, atol=0)
        for g, fg in zip(reused_grads, fresh_grads):
            torch.testing.assert_close(g, fg, rtol=0, atol=0)
    with torch.no_grad():  # inference path (no autograd; on CUDA the plan is a replayed graph), twice
        for _ in range(2):
            torch.testing.assert_close(isa_attention(q, k, v, 32, config=cfg), fresh, rtol=0, atol=0)


@pytest.mark.parametrize("graph", ["graph_plan_train", "graph_call_train"])
def test_training_calls_of_one_shape_keep_their_own_plans(graph):
    """Two blocks' calls of the same shapes, both forwards before either backward (as in a model): each
    backward must use its own call's selection and work lists. On CUDA with graph_plan_train the plans come
    from one replayed graph whose outputs the second call overwrites, so each call must have copied its own;
    with graph_call_train each call must replay a slot of its own, and the second round reuse both."""
    cfg = IsaConfig(block=16, alpha_s=0.5, alpha_ns=0.2)
    calls = [_qkv(1, 2, 96, 16, seed=s) for s in (40, 41)]
    grads_in = [torch.randn(1, 2, 96, 16, device=DEVICE).to(DTYPE) for _ in calls]
    alone = [_out_and_grads(*qkv, 32, g, config=cfg) for qkv, g in zip(calls, grads_in)]
    tiles = TileConfig(**{graph: True})
    for _ in range(2):  # the second round replays the graph the first captured
        for qkv in calls:
            for x in qkv:
                x.grad = None
        outs = [isa_attention(*qkv, 32, config=cfg, tiles=tiles) for qkv in calls]
        torch.autograd.backward(outs, grads_in)
        for (out, grads), got, qkv in zip(alone, outs, calls):
            torch.testing.assert_close(got.detach(), out, rtol=0, atol=0)
            for x, g in zip(qkv, grads):
                torch.testing.assert_close(x.grad, g, rtol=0, atol=0)


def test_copied_plan_shares_no_tensor_with_the_original():
    q, k, _ = _qkv(1, 2, 96, 16, seed=42)
    plan = isa_plan(q, k, 32, config=IsaConfig(block=16, alpha_s=0.5, alpha_ns=0.2))
    plan = dataclasses.replace(plan, dkdv=key_launches(plan.selection, TileConfig().dkdv_sharp_gk))
    copy = _copied(plan)

    def tensors(p):
        parts = [p, p.selection, *(w for w in (*p.fwd, *p.dkdv) if w is not None)]
        return [getattr(x, f.name) for x in parts for f in dataclasses.fields(x)
                if isinstance(getattr(x, f.name), torch.Tensor)]
    originals, copies = tensors(plan), tensors(copy)
    assert len(originals) == len(copies) >= 5 + 7 * 3  # selection 4, mask 1, three or four launches of 7
    for a, b in zip(originals, copies):
        assert torch.equal(a, b) and a.untyped_storage().data_ptr() != b.untyped_storage().data_ptr()


def test_reused_plan_takes_pooled_values_from_the_new_call():
    """A sampler's next step: same selection, new k and v; the 0-th order terms use the new pooled k/v."""
    q, k, _ = _qkv(1, 1, 80, 16, seed=25)
    _, k2, v2 = _qkv(1, 1, 80, 16, seed=26)
    plan = isa_plan(q[:, :, :50], k, 30, config=IsaConfig(block=16, alpha_ns=0.2))
    out = isa_attention(q[:, :, :50], k2, v2, 30, plan=plan)
    ref = isa_attention(q[:, :, :50], k2, v2, 30, plan=plan, backend="torch")
    assert _rel(out, ref) < REL_TOL


def test_mismatched_plan_or_config_is_a_one_line_error():
    q, k, v = _qkv(1, 1, 96, 16, seed=27)
    plan = isa_plan(q, k, 32, config=IsaConfig(block=16))
    for bad in (lambda: isa_attention(q[:, :, :64], k, v, 32, plan=plan),  # target-only vs full plan
                lambda: isa_attention(q, k, v, 16, plan=plan),
                lambda: isa_attention(q, k, v, 32, plan=plan, alpha_f=0.25)):
        with pytest.raises(IsaInputError) as err:
            bad()
        assert "\n" not in str(err.value) and "plan" in str(err.value)
    with pytest.raises(IsaInputError, match="target tokens"):
        isa_attention(q[:, :, :50], k, v, 32)
    with pytest.raises(IsaInputError, match="mean_terms"):
        IsaConfig(dropped_mean=True, mean_terms=False)
    with pytest.raises(IsaInputError, match="either config"):
        isa_attention(q, k, v, 32, config=IsaConfig(block=16), alpha_s=0.5)


def test_per_head_alpha_f_shares_one_budget_by_sharpness():
    score = torch.tensor([[[0.9, 0.8, 0.7, 0.6], [0.1, 0.2, 0.1, 0.1], [0.5, 0.95, 0.4, 0.3]]])  # [1, 3, 4]
    is_sharp = sharp_across_heads(score, n_per_head=2)  # budget 6 of 12
    assert is_sharp.sum().item() == 6 and (is_sharp.sum(-1) >= 1).all()
    assert is_sharp[0, 0].tolist() == [True, True, True, True]  # the peaky head takes the spare budget
    assert is_sharp[0, 1].tolist() == [False, True, False, False]  # the others keep only their sharpest
    assert is_sharp[0, 2].tolist() == [False, True, False, False]


def test_per_head_full_queries_kernel_matches_oracle_and_keeps_the_total():
    q, k, v = _qkv(1, 3, 112, 16, seed=28)
    cfg = IsaConfig(block=16, alpha_s=0.25, alpha_ns=0.2, per_head_alpha_f=True)
    plan = isa_plan(q, k, 48, config=cfg)
    live = plan.selection.sharp < plan.layout.nbq
    assert live.sum().item() == 3 * keep_count(0.5, plan.layout.nb) and (live.sum(-1) >= 1).all()
    exact, mean = block_masks(plan.selection)
    assert not (exact & mean).any()
    grad = torch.randn(1, 3, 112, 16, device=DEVICE).to(DTYPE)
    out, grads = _out_and_grads(q, k, v, 48, grad, plan=plan)
    ref, ref_grads = _out_and_grads(q, k, v, 48, grad, plan=plan, backend="torch")
    assert _rel(out, ref) < REL_TOL
    for g, rg in zip(grads, ref_grads):
        assert _rel(g, rg) < 2 * REL_TOL
