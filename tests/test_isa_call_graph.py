"""Whole ISA training calls as CUDA graphs (kernels/isa_call_graph.py): the slot pool's leases on the CPU, the
graphed calls themselves on a GPU (skipped without one)."""
import gc
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest

from kernels import IsaConfig, IsaInputError, TileConfig, isa_attention
from kernels.isa import _CALL_GRAPHS
from kernels.isa_call_graph import SlotPool


class Slot:
    """What the pool hands out; the pool only counts and leases them."""


def test_a_leased_slot_is_not_handed_out_again_until_its_lease_dies():
    pool: SlotPool[Slot] = SlotPool(max_slots=3)
    first, second = pool.lease("k", Slot), pool.lease("k", Slot)
    assert first is not None and second is not None and first.slot is not second.slot
    assert pool.count("k") == 2
    held = first.slot
    del first
    gc.collect()
    again = pool.lease("k", Slot)  # a free slot is reused, none is made
    assert again is not None and again.slot is held and pool.count("k") == 2
    other = pool.lease("other key", Slot)
    assert other is not None and pool.count("other key") == 1 and pool.count("k") == 2


def test_slots_stop_at_the_cap_and_a_failed_capture_is_not_retried():
    pool: SlotPool[Slot] = SlotPool(max_slots=2)
    leases = [pool.lease("k", Slot) for _ in range(2)]
    assert all(lease is not None for lease in leases)
    assert pool.lease("k", Slot) is None  # all busy at the cap: the call runs eagerly
    attempts = []

    def failing() -> Slot:
        attempts.append(1)
        raise RuntimeError("operation not permitted when stream is capturing")

    assert pool.lease("bad", failing) is None and pool.lease("bad", failing) is None
    assert len(attempts) == 1 and pool.count("bad") == 0


def _qkv(seed: int, dtype: torch.dtype = torch.bfloat16) -> list[torch.Tensor]:
    g = torch.Generator(device="cuda").manual_seed(seed)
    return [torch.randn(1, 2, 512, 64, generator=g, device="cuda").to(dtype).requires_grad_() for _ in range(3)]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_graphed_calls_equal_eager_ones_and_reuse_their_slots():
    """Three steps of two calls of one shape: the graphed outputs and gradients are the eager ones, bit for bit
    (the same kernels on the same inputs), and the steps after the first replay the two slots it captured."""
    cfg = IsaConfig(block=64, alpha_s=0.25, alpha_f=0.25, alpha_ns=0.1)
    calls = [_qkv(seed) for seed in (50, 51)]
    grads_in = [torch.randn_like(calls[0][0]) for _ in calls]
    results = {}
    for graph in (False, True):
        tiles = TileConfig(graph_call_train=graph)
        for _ in range(3):
            for x in (x for qkv in calls for x in qkv):
                x.grad = None
            outs = [isa_attention(*qkv, 256, config=cfg, tiles=tiles) for qkv in calls]
            torch.autograd.backward(outs, grads_in)
        results[graph] = [o.detach() for o in outs] + [x.grad for qkv in calls for x in qkv]
    for got, want in zip(results[True], results[False]):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    keys = [key for key in _CALL_GRAPHS._slots if key[0] == (1, 2, 512, 64) and key[-1].graph_call_train]
    assert len(keys) == 1 and _CALL_GRAPHS.count(keys[0]) == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_graphed_call_takes_one_backward():
    q, k, v = _qkv(52)
    out = isa_attention(q, k, v, 256, config=IsaConfig(block=64), tiles=TileConfig(graph_call_train=True))
    out.sum().backward(retain_graph=True)
    with pytest.raises(IsaInputError, match="takes one backward"):
        out.sum().backward()
