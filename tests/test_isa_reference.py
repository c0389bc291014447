"""The ISA torch oracle against DESIGN 6's rules, dense attention, and a naive float64 loop version."""
import math

import pytest
import torch

from kernels import IsaConfig, dense_attention_f64, isa_reference
from kernels.isa_blocks import BlockLayout, block_masks, select_blocks, select_context_blocks
from kernels.isa_config import keep_count
from kernels.isa_reference import attention_from_selection, pool_blocks


def _qkv(b: int, h: int, n: int, d: int, seed: int, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, h, n, d, generator=g, dtype=dtype) for _ in range(3)]


def _selection(q, k, n_ctx, cfg):
    layout = BlockLayout(q.shape[2] - n_ctx, n_ctx, cfg.block)
    return select_blocks(pool_blocks(q, layout), pool_blocks(k, layout), layout, cfg)


@pytest.mark.parametrize("alpha,n,expected", [(0.125, 512, 64), (0.0625, 576, 36), (0.5, 1, 1), (0.1, 3, 1),
                                              (0.1, 30, 3), (1.0, 7, 7), (0.3, 0, 0)])
def test_keep_count_is_max_one_ceil(alpha, n, expected):
    assert keep_count(alpha, n) == expected


def test_blocks_never_straddle_the_boundary():
    layout = BlockLayout(n_tgt=100, n_ctx=70, block=32)
    assert (layout.nbt, layout.nbc) == (4, 3)
    assert layout.starts().tolist() == [0, 32, 64, 96, 100, 132, 164]
    assert layout.lengths().tolist() == [32, 32, 32, 4, 32, 32, 6]
    tb = layout.token_block()
    assert tb[99].item() == 3 and tb[100].item() == 4 and tb[169].item() == 6


def test_pool_uses_valid_tokens_of_partial_blocks():
    x = torch.randn(1, 1, 170, 4, dtype=torch.float64)
    means = pool_blocks(x, BlockLayout(100, 70, 32))
    torch.testing.assert_close(means[0, 0, 3], x[0, 0, 96:100].float().mean(0))
    torch.testing.assert_close(means[0, 0, 6], x[0, 0, 164:170].float().mean(0))


def test_selection_counts_and_disjoint_masks():
    q, k, _ = _qkv(2, 2, 330, 16, seed=1)
    cfg = IsaConfig(block=16, alpha_s=0.25, alpha_f=0.5, alpha_ns=0.2)
    sel = _selection(q, k, 130, cfg)
    layout = sel.layout
    n_kept = layout.nbt + keep_count(0.25, layout.nbc)
    assert sel.kept.shape[-1] == n_kept
    assert (sel.kept[..., :layout.nbt] == torch.arange(layout.nbt)).all()
    assert sel.sharp.shape[-1] == keep_count(0.5, layout.nb)
    exact_mask, mean_mask = block_masks(sel)
    assert not (exact_mask & mean_mask).any()
    exact_per_row = exact_mask.sum(-1)
    is_sharp = torch.zeros(2, 2, layout.nb, dtype=torch.bool).scatter_(2, sel.sharp, True)
    assert (exact_per_row[is_sharp] == n_kept).all()
    assert (exact_per_row[~is_sharp] == keep_count(0.2, n_kept)).all()
    assert ((exact_mask | mean_mask).sum(-1)[~is_sharp] == n_kept).all()
    assert not mean_mask[is_sharp].any()


def test_selection_ties_go_to_the_lower_index():
    layout = BlockLayout(64, 64 * 6, 64)
    qm = torch.randn(1, 1, layout.nb, 8)
    km = torch.zeros(1, 1, layout.nb, 8)  # every context block equally salient
    kept = select_context_blocks(qm, km, layout, alpha_s=0.34)
    assert kept[0, 0].tolist() == [0, 1, 2, 3]


def test_dropped_mean_adds_zeroth_order_terms_of_dropped_context():
    q, k, v = _qkv(1, 1, 200, 16, seed=2)
    cfg = IsaConfig(block=16, alpha_s=0.25)
    sel = _selection(q, k, 120, cfg)
    sel_dm = _selection(q, k, 120, IsaConfig(block=16, alpha_s=0.25, dropped_mean=True))
    dropped = torch.ones(sel.layout.nb, dtype=torch.bool)
    dropped[sel.kept[0, 0]] = False
    assert not block_masks(sel)[1][0, 0][:, dropped].any()
    assert block_masks(sel_dm)[1][0, 0][:, dropped].all()
    assert not torch.allclose(attention_from_selection(q, k, v, sel), attention_from_selection(q, k, v, sel_dm))


@pytest.mark.parametrize("n,n_ctx", [(150, 60), (96, 0), (40, 39)])
def test_all_exact_equals_dense(n, n_ctx):
    q, k, v = _qkv(2, 2, n, 16, seed=3, dtype=torch.float64)
    out = isa_reference(q, k, v, n_ctx, IsaConfig(block=16, alpha_s=1.0, alpha_f=1.0))
    torch.testing.assert_close(out, dense_attention_f64(q, k, v), rtol=1e-10, atol=1e-10)


def _naive_f64(q, k, v, sel):
    """One query token at a time: explicit list of (logit, value) terms, softmax, weighted sum."""
    layout, tb = sel.layout, sel.layout.token_block()
    exact_mask, mean_mask = block_masks(sel)
    lengths = layout.lengths().double()
    scale = 1.0 / math.sqrt(q.shape[-1])
    out = []
    for b in range(q.shape[0]):
        for h in range(q.shape[1]):
            km = torch.stack([k[b, h][tb == j].mean(0) for j in range(layout.nb)])
            vm = torch.stack([v[b, h][tb == j].mean(0) for j in range(layout.nb)])
            for r in range(q.shape[2]):
                i = tb[r]
                cols = exact_mask[b, h, i][tb]
                means = mean_mask[b, h, i]
                logits = torch.cat([k[b, h][cols] @ q[b, h, r] * scale,
                                    km[means] @ q[b, h, r] * scale + lengths[means].log()])
                p = torch.softmax(logits, 0)
                out.append(p @ torch.cat([v[b, h][cols], vm[means]]))
    return torch.stack(out).reshape(q.shape)


@pytest.mark.parametrize("dropped_mean", [False, True])
def test_reference_gradients_match_naive_float64(dropped_mean):
    q, k, v = _qkv(1, 2, 52, 8, seed=4)
    cfg = IsaConfig(block=16, alpha_s=0.5, alpha_f=0.5, alpha_ns=0.3, dropped_mean=dropped_mean)
    sel = _selection(q, k, 30, cfg)
    grad = torch.randn_like(q)
    ref = [x.clone().requires_grad_() for x in (q, k, v)]
    naive = [x.double().requires_grad_() for x in (q, k, v)]
    out_ref = attention_from_selection(*ref, sel)
    out_naive = _naive_f64(*naive, sel)
    torch.testing.assert_close(out_ref.double(), out_naive, rtol=1e-5, atol=1e-5)
    out_ref.backward(grad)
    out_naive.backward(grad.double())
    for a, b in zip(ref, naive):
        torch.testing.assert_close(a.grad.double(), b.grad, rtol=1e-5, atol=1e-5)
