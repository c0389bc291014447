"""Triton ISA kernels against the torch oracle (forward and q/k/v gradients) and against dense attention.

Without a GPU the kernels run in Triton's interpreter (kernels/__init__ turns it on) at small shapes in
fp32/fp16; with a GPU the same cases run in bf16 and fp16, plus larger shapes.
"""
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest
from _isa_device import DEVICE, ON_GPU

from kernels import IsaConfig, IsaInputError, TileConfig, dense_attention_f64, isa_attention
from kernels.isa_blocks import BlockLayout, block_masks, select_blocks
from kernels.isa_pool import pool_qkv
from kernels.isa_reference import pool_blocks
from kernels.isa_selection import key_launches, mean_rows, pack_bits, query_launches

DTYPES = [torch.bfloat16, torch.float16] if ON_GPU else [torch.float32, torch.float16]
# Relative L2 error allowed between kernel and oracle (the oracle computes in fp32 from the same inputs).
REL_TOL = {torch.float32: 2e-5, torch.float16: 4e-3, torch.bfloat16: 2e-2}

# (B, H, N, n_ctx, D, block, alphas, dropped_mean)
CASES = {
    "tails-both-parts": (1, 2, 150, 60, 16, 16, (0.25, 0.5, 0.2), False),
    "dropped-mean": (1, 1, 150, 60, 16, 16, (0.25, 0.5, 0.2), True),
    "no-context-batch2": (2, 1, 200, 0, 32, 32, (0.125, 0.5, 0.25), False),
    "single-block": (1, 1, 64, 0, 32, 64, (0.125, 0.5, 0.0625), False),
    "tgt-ne-ctx-d64": (1, 1, 300, 100, 64, 64, (0.5, 0.5, 0.3), False),
    "d128-one-case": (1, 1, 130, 50, 128, 64, (0.5, 0.5, 0.5), False),
}
if ON_GPU:
    CASES["gpu-large"] = (2, 3, 2200, 900, 128, 64, (0.125, 0.5, 0.0625), False)
    CASES["gpu-large-dropped"] = (1, 2, 1500, 1000, 64, 64, (0.125, 0.5, 0.0625), True)


def _qkv(shape, dtype, seed):
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    return [torch.randn(*shape, generator=g, device=DEVICE, dtype=torch.float32).to(dtype).requires_grad_()
            for _ in range(3)]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def _run(backend, q, k, v, n_ctx, block, alphas, dropped_mean, grad):
    for x in (q, k, v):
        x.grad = None
    out = isa_attention(q, k, v, n_ctx, block=block, alpha_s=alphas[0], alpha_f=alphas[1], alpha_ns=alphas[2],
                        dropped_mean=dropped_mean, backend=backend)
    out.backward(grad)
    return out.detach().clone(), [x.grad.clone() for x in (q, k, v)]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", list(CASES), ids=str)
def test_kernel_matches_reference_forward_and_gradients(case, dtype):
    b, h, n, n_ctx, d, block, alphas, dropped_mean = CASES[case]
    seed = int.from_bytes(os.urandom(4), "little")
    q, k, v = _qkv((b, h, n, d), dtype, seed)
    grad = torch.randn(b, h, n, d, device=DEVICE).to(dtype)
    out, grads = _run("triton", q, k, v, n_ctx, block, alphas, dropped_mean, grad)
    ref, ref_grads = _run("torch", q, k, v, n_ctx, block, alphas, dropped_mean, grad)
    assert out.dtype == dtype and out.shape == q.shape
    tol = REL_TOL[dtype]
    assert _rel(out, ref) < tol, f"seed {seed}"
    for name, g, rg in zip("qkv", grads, ref_grads):
        assert _rel(g, rg) < 2 * tol, f"d{name} seed {seed}"


@pytest.mark.parametrize("tiles", [TileConfig(fwd_sharp_gq=1, fwd_key_blocks=1, dq_sharp_gq=1, dkdv_sharp_gk=1),
                                   TileConfig(fwd_sharp_gq=1, fwd_key_blocks=2),
                                   TileConfig(fwd_warp_specialize=True), TileConfig(mean_chunks=3)],
                         ids=["single", "key-pairs", "warp-spec", "mean-chunks"])
def test_grouped_sharp_tiles_match_reference(tiles):
    """Sharp query blocks one per program instead of the default two (odd count there: one padded group),
    with one or two key blocks per step (odd kept count: one single step at the end), a warp-specialised
    exact loop, or d(k_mean)/d(v_mean) summed over three query-block chunks (the last one short), give the
    same result."""
    dtype = DTYPES[0]
    q, k, v = _qkv((1, 2, 150, 16), dtype, seed=14)
    grad = torch.randn(1, 2, 150, 16, device=DEVICE).to(dtype)
    out = isa_attention(q, k, v, 60, block=16, alpha_s=0.25, alpha_ns=0.2, tiles=tiles)
    out.backward(grad)
    grads = [x.grad.clone() for x in (q, k, v)]
    ref, ref_grads = _run("torch", q, k, v, 60, 16, (0.25, 0.5, 0.2), False, grad)
    assert _rel(out, ref) < REL_TOL[dtype]
    for g, rg in zip(grads, ref_grads):
        assert _rel(g, rg) < 2 * REL_TOL[dtype]


def _selection(dropped_mean: bool, per_head: bool = False):
    q, k, _ = _qkv((2, 2, 330, 16), torch.float32, seed=15)
    layout = BlockLayout(200, 130, 16)
    return select_blocks(pool_blocks(q.detach(), layout), pool_blocks(k.detach(), layout), layout,
                         IsaConfig(block=16, alpha_s=0.25, alpha_ns=0.2, dropped_mean=dropped_mean,
                                   per_head_alpha_f=per_head))


@pytest.mark.parametrize("per_head", [False, True], ids=["same-count", "per-head-count"])
def test_work_lists_cover_every_exact_pair_once(per_head):
    """Query-side and key-side work lists hold exactly the selection's exact (query block, key block) pairs
    (with per-head counts: padded items walk nothing)."""
    sel = _selection(dropped_mean=False, per_head=per_head)
    nb = sel.layout.nb

    def pairs(work, own_is_query):
        found = torch.zeros(4, nb, nb, dtype=torch.int64)
        for i in range(work.n_items):
            bh, off, cnt = work.bh[i].item(), work.off[i].item(), work.cnt[i].item()
            for own in work.own[i].tolist():
                for other in work.lst[off:off + cnt].tolist():
                    if own >= 0:
                        qb, kb = (own, other) if own_is_query else (other, own)
                        found[bh, qb, kb] += 1
        return found

    expected = block_masks(sel)[0].reshape(4, nb, nb).long().cpu()
    q_sharp, q_flat = query_launches(sel, g_sharp=2)
    assert torch.equal(pairs(q_sharp, True) + pairs(q_flat, True), expected)
    k_sharp, k_all = key_launches(sel, g_sharp=2)
    assert torch.equal(pairs(k_sharp, False) + pairs(k_all, False), expected)


@pytest.mark.parametrize("dropped_mean,per_head", [(False, False), (True, False), (True, True)])
def test_kernel_mean_mask_equals_reference_mask(dropped_mean, per_head):
    sel = _selection(dropped_mean, per_head)
    nb = sel.layout.nb
    assert torch.equal(mean_rows(sel).bool(), block_masks(sel)[1].reshape(-1, nb))


def test_pack_bits_round_trips_every_bit():
    rows = (torch.rand(5, 70) < 0.5).to(torch.int8)
    rows[0, 31] = rows[1, 63] = 1  # sign bits of both full words
    packed = pack_bits(rows)
    assert packed.dtype == torch.int32 and packed.shape == (5, 3)
    bits = (packed[:, :, None] >> torch.arange(32)) & 1
    assert torch.equal(bits.reshape(5, 96)[:, :70].to(torch.int8), rows)


@pytest.mark.parametrize("n,n_ctx,block", [(150, 60, 16), (96, 0, 32), (64, 63, 64)])
def test_all_exact_equals_dense_attention(n, n_ctx, block):
    dtype = DTYPES[0]
    q, k, v = _qkv((2, 1, n, 32), dtype, seed=11)
    out = isa_attention(q, k, v, n_ctx, block=block, alpha_s=1.0, alpha_f=1.0)
    assert _rel(out, dense_attention_f64(q, k, v)) < REL_TOL[dtype]


def test_pool_kernel_equals_torch_pooling():
    q, k, v = _qkv((2, 2, 150, 16), DTYPES[0], seed=12)
    layout = BlockLayout(90, 60, 16)
    for got, x in zip(pool_qkv(q.detach(), k.detach(), v.detach(), layout), (q, k, v)):
        torch.testing.assert_close(got, pool_blocks(x.detach(), layout), rtol=1e-5, atol=1e-5)


def test_bad_inputs_raise_one_line_errors():
    q, k, v = _qkv((1, 1, 32, 16), DTYPES[0], seed=13)
    with pytest.raises(IsaInputError, match="n_ctx"):
        isa_attention(q, k, v, 32)
    with pytest.raises(IsaInputError, match="backend"):
        isa_attention(q, k, v, 0, backend="cuda")
    with pytest.raises(IsaInputError, match="alpha_f"):
        isa_attention(q, k, v, 0, alpha_f=0.0)
    with pytest.raises(IsaInputError, match="shape"):
        isa_attention(q, k[:, :, :16], v, 0)
    assert IsaConfig().block == 64
    for bad in ({"fwd_key_blocks": 3}, {"hopper_key_blocks": 4}, {"hopper_stages": 1}, {"hopper_flat_stages": 5},
                {"dkdv_hopper_stages": 0}, {"dkdv_hopper_flat_stages": 9}):
        with pytest.raises(IsaInputError, match=next(iter(bad))) as err:
            TileConfig(**bad)
        assert "\n" not in str(err.value)
