"""LIVEditor on a GPU (skipped without CUDA): the Triton ISA path in the model, bf16 autocast, the cache."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from _isa_model_helpers import tiny

from isa_model import objective
from isa_model.config import IsaSettings
from isa_model.model import LIVEditor

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _pair(**changes):
    cfg = dataclasses.replace(tiny(**changes).model, frames=4, height=64, width=64, patch=(1, 4, 4))  # 256 + 256
    torch.manual_seed(0)
    model = LIVEditor(cfg).cuda().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ada" in name or name.startswith("out."):
                p.normal_(0, 0.05)
    g = torch.Generator().manual_seed(1)
    shape = (2, 3, cfg.frames, cfg.height, cfg.width)
    x, src = (torch.randn(shape, generator=g).cuda() for _ in range(2))
    text = model.encode_text(model.text.tokenize(["invert the colours", "sepia"]).cuda())
    return model, x, torch.tensor([0.3, 0.7], device="cuda"), src, text


def test_triton_isa_all_exact_matches_dense_in_fp32():
    exact = dataclasses.asdict(IsaSettings(block=64, alpha_s=1.0, alpha_f=1.0, alpha_ns=1.0, backend="triton"))
    model, x, t, src, text = _pair(isa=exact)
    dense = LIVEditor(dataclasses.replace(model.cfg, attention="dense")).cuda().eval()
    dense.load_state_dict(model.state_dict())
    with torch.no_grad():
        a, b = model(x, t, src, text), dense(x, t, src, text)
    assert (a - b).norm() / b.norm() < 5e-3


def test_triton_isa_matches_torch_reference_backend():
    model, x, t, src, text = _pair(isa={"block": 64, "backend": "triton"})
    ref = LIVEditor(dataclasses.replace(model.cfg, isa=IsaSettings(block=64, backend="torch"))).cuda().eval()
    ref.load_state_dict(model.state_dict())
    with torch.no_grad():
        a, b = model(x, t, src, text), ref(x, t, src, text)
    assert (a - b).norm() / b.norm() < 5e-3


def test_bf16_train_step_and_cache_on_gpu():
    model, x, t, src, text = _pair(isa={"block": 64, "backend": "triton"}, context_cache=True)
    model.train()
    x_t, v = objective.path_point(x, src, t)  # the bridge from the source, with the blend mask (tiny's)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        pred = objective.split_output(model(x_t, t, src, text), 3, model.cfg.blend_mask)
    loss, _ = objective.loss(pred, v, objective.change_mask(src, x), 0.1)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert torch.isfinite(loss) and grads and all(torch.isfinite(g).all() for g in grads)
    model.eval()
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        a = model(x, t, src, text).float()
        b = model.forward_cached(x, t, text, model.encode_context(src, text)).float()
    assert (a - b).norm() / a.norm() < 2e-2  # bf16: same math, different launch shapes


@pytest.mark.parametrize("graph", ["graph_plan_train", "graph_call_train"])
def test_graphed_calls_give_the_eager_training_step(graph):
    """isa.graph_plan_train: every block's ISA call replays one captured graph of the same shapes and copies
    its plan; each block's backward must still see its own selection. isa.graph_call_train: every block's call
    replays a whole captured call (forward, then backward) of its own. Same loss and gradients as eager, twice
    (the second step replays the graphs the first captured)."""
    results = []
    for graphed in (False, True):
        model, x, t, src, _ = _pair(isa={"block": 64, "backend": "triton", graph: graphed})
        model.train()
        x_t, v = objective.path_point(x, src, t)
        tokens = model.text.tokenize(["invert the colours", "sepia"]).cuda()
        for _ in range(2):  # the text is encoded each step, as in training: a step's backward frees its graph
            model.zero_grad(set_to_none=True)
            pred = objective.split_output(model(x_t, t, src, model.encode_text(tokens)), 3, model.cfg.blend_mask)
            loss, _ = objective.loss(pred, v, objective.change_mask(src, x), 0.1)
            loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    (eager_loss, eager_grads), (graphed_loss, graphed_grads) = results
    torch.testing.assert_close(graphed_loss, eager_loss, rtol=1e-6, atol=0)  # the same kernels on the same plans
    assert len(graphed_grads) == len(eager_grads) > 0
    for a, b in zip(graphed_grads, eager_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)  # a block given another's plan is off by far more
