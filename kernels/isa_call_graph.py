"""A whole ISA training call (selection, forward, and later its backward) replayed as two CUDA graphs.

Graphing the selection alone (`TileConfig.graph_plan_train`) leaves the forward and backward kernels to launch
from Python: about 1 ms of host time a call at 32K tokens against 5.8 ms of kernels (H200, 2026-12-03), idle on
the card. Here a call copies q, k, v into a graph's static inputs and replays it; its backward copies dO in and
replays a second graph that reads the forward's static outputs. Those outputs must survive until the backward,
after the calls of every later block of the same shapes, so each call leases a graph of its own (a slot) for as
long as its autograd context lives; a step of 8 blocks captures 8 slots once and replays them every step.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import torch

Saved = tuple[Any, ...]  # what the forward leaves for its backward (tensors, or dataclasses holding them)
ForwardFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, Saved]]  # (q, k, v) -> o, saved
BackwardFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, Saved, torch.Tensor],
                      tuple[torch.Tensor, torch.Tensor, torch.Tensor]]  # (q, k, v, saved, dO) -> dq, dk, dv

MAX_SLOTS = 32  # per shape: more training calls alive at once than this run eagerly, uncaptured


@dataclass(eq=False)
class CallGraph:
    """One captured call: static inputs, the forward graph and its outputs, the backward graph and its."""

    inputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # static q, k, v
    out: torch.Tensor
    saved: Saved
    grad_out: torch.Tensor  # static dO
    grads: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    forward_graph: torch.cuda.CUDAGraph
    backward_graph: torch.cuda.CUDAGraph

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """O for these inputs, a tensor of its own (the graph's output is overwritten by the slot's next call)."""
        for static, x in zip(self.inputs, (q, k, v)):
            static.copy_(x)
        self.forward_graph.replay()
        return self.out.clone()

    def backward(self, grad_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """dq, dk, dv of the slot's last forward, tensors of their own."""
        self.grad_out.copy_(grad_out)
        self.backward_graph.replay()
        dq, dk, dv = (g.clone() for g in self.grads)
        return dq, dk, dv


def capture(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, forward: ForwardFn, backward: BackwardFn) -> CallGraph:
    """Capture forward(q, k, v) and backward(q, k, v, saved, dO) over static copies of q, k, v. Both run once
    first on a side stream (kernels compile and autotune outside a capture, as torch's graph docs ask).
    Raises RuntimeError when an op cannot be captured."""
    inputs = (q.clone(), k.clone(), v.clone())
    no_autocast = torch.autocast("cuda", enabled=False)  # a custom backward runs outside autocast
    side = torch.cuda.Stream(q.device)
    side.wait_stream(torch.cuda.current_stream(q.device))
    with torch.cuda.stream(side):
        out, saved = forward(*inputs)
        with no_autocast:
            backward(*inputs, saved, torch.zeros_like(out))
    torch.cuda.current_stream(q.device).wait_stream(side)
    forward_graph, backward_graph = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
    # thread_local: other threads (a loader pinning memory) may use CUDA while this one captures
    with torch.cuda.graph(forward_graph, capture_error_mode="thread_local"):
        out, saved = forward(*inputs)
    grad_out = torch.zeros_like(out)
    with torch.cuda.graph(backward_graph, capture_error_mode="thread_local"), no_autocast:
        grads = backward(*inputs, saved, grad_out)
    return CallGraph(inputs, out, saved, grad_out, grads, forward_graph, backward_graph)


T = TypeVar("T")


class Lease(Generic[T]):
    """A slot held busy while the lease lives: an autograd context keeps it until its backward is done or
    dropped, so no later call overwrites the buffers that backward reads."""

    def __init__(self, slot: T, busy: set[int]) -> None:
        self.slot, self._busy = slot, busy
        busy.add(id(slot))

    def __del__(self) -> None:
        self._busy.discard(id(self.slot))


class SlotPool(Generic[T]):
    """Slots per key (shapes, dtype, device, configs): a free one is reused, else a new one is made, up to
    max_slots; a key whose making failed once is not tried again (its calls run eagerly)."""

    def __init__(self, max_slots: int = MAX_SLOTS) -> None:
        self.max_slots = max_slots
        self._slots: dict[Hashable, list[T]] = {}
        self._busy: set[int] = set()
        self._failed: set[Hashable] = set()

    def lease(self, key: Hashable, make: Callable[[], T]) -> Lease[T] | None:
        """A lease on a free slot of key, or None: making failed (now or before) or max_slots are busy."""
        if key in self._failed:
            return None
        slots = self._slots.setdefault(key, [])
        free = next((s for s in slots if id(s) not in self._busy), None)
        if free is None:
            if len(slots) >= self.max_slots:
                return None
            try:
                free = make()
            except RuntimeError:
                self._failed.add(key)
                return None
            slots.append(free)
        return Lease(free, self._busy)

    def count(self, key: Hashable) -> int:
        """Slots made for key."""
        return len(self._slots.get(key, ()))
