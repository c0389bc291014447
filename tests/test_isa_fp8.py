"""fp8 scores in the ISA forward (TileConfig.fwd_fp8): e4m3 copies of q and k with one scale per head feed the
exact blocks' q . k; P . V and the 0-th order terms keep the inputs' dtype. The interpreter decodes e4m3 exactly
(on the CPU, fp32: the only error left is the quantization itself)."""
import os
from pathlib import Path

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest
from _isa_device import DEVICE, ON_GPU
from _isa_model_helpers import benchmark_tool

from isa_model.config import load_config
from kernels import IsaConfig, IsaInputError, TileConfig, dense_attention_f64, isa_attention, isa_plan
from kernels.isa_forward import FP8_MAX, fp8_scaled

DTYPE = torch.bfloat16 if ON_GPU else torch.float32
FP8_TILES = TileConfig(fwd_fp8=True)


def _qkv(n: int, seed: int, heads: int = 2, d: int = 32, spread: float = 6.0) -> list[torch.Tensor]:
    """Heads of unlike ranges: the second `spread` times the first."""
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    scales = torch.tensor([1.0, spread][:heads], device=DEVICE)[None, :, None, None]
    return [(torch.randn(1, heads, n, d, generator=g, device=DEVICE) * scales).to(DTYPE) for _ in range(3)]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def test_fp8_copies_span_e4m3_per_head_and_round_to_its_precision():
    x = _qkv(96, seed=60)[0]
    x8, scale = fp8_scaled(x)
    assert x8.dtype == torch.float8_e4m3fn and scale.shape == (2,)
    assert torch.equal(x8.float().abs().amax(dim=(0, 2, 3)), torch.full((2,), FP8_MAX, device=DEVICE))
    back = x8.float() * scale.reshape(1, 2, 1, 1)
    normal = x.float().abs() > 2.0 ** -6 * scale.reshape(1, 2, 1, 1)  # e4m3's normal range, per head
    rel = ((back - x.float()).abs() / x.float().abs())[normal]
    assert 0 < rel.max() <= 2.0 ** -4  # three mantissa bits: half a step of 1/8


def test_fp8_scores_are_the_kernel_on_the_dequantized_q_and_k():
    """Block-sparse (no 0-th order terms): every score is an exact block's, so the fp8 call equals the plain
    kernel given the dequantized q and k, on the same plan."""
    q, k, v = _qkv(160, seed=61)
    cfg = IsaConfig(block=16, alpha_s=0.5, alpha_f=0.5, alpha_ns=0.25, mean_terms=False)
    plan = isa_plan(q, k, 64, config=cfg)
    (q8, q_scale), (k8, k_scale) = fp8_scaled(q), fp8_scaled(k)
    q_deq = (q8.float() * q_scale.reshape(1, 2, 1, 1)).to(DTYPE)
    k_deq = (k8.float() * k_scale.reshape(1, 2, 1, 1)).to(DTYPE)
    with torch.no_grad():
        fp8 = isa_attention(q, k, v, 64, plan=plan, tiles=FP8_TILES)
        plain = isa_attention(q_deq, k_deq, v, 64, plan=plan)
        full = isa_attention(q, k, v, 64, plan=plan)
    assert _rel(fp8, plain) < (2e-2 if ON_GPU else 1e-5)
    assert _rel(fp8, full) > (0 if ON_GPU else 1e-4)  # the quantization is there to see


def _dequantized(x: torch.Tensor) -> torch.Tensor:
    x8, scale = fp8_scaled(x)
    return (x8.float() * scale.reshape(1, -1, 1, 1)).to(x.dtype)


@pytest.mark.parametrize("seed", [62, 70])
@pytest.mark.parametrize("dropped_mean", [False, True])
def test_fp8_scores_cost_what_quantizing_q_and_k_costs_dense_attention(dropped_mean, seed):
    """With 0-th order terms: the fp8 call's distance from the full-precision call is about what e4m3 q and k do
    to dense attention (the same inputs in float64), and no more."""
    q, k, v = _qkv(200, seed=seed, spread=1.5)
    cfg = IsaConfig(block=16, alpha_s=0.5, alpha_f=0.25, alpha_ns=0.25, dropped_mean=dropped_mean)
    with torch.no_grad():
        fp8 = isa_attention(q, k, v, 80, config=cfg, tiles=FP8_TILES)
        full = isa_attention(q, k, v, 80, config=cfg)
        target_only = [isa_attention(q[:, :, :120], k, v, 80, config=cfg, tiles=tiles) for tiles in (FP8_TILES, None)]
    dense_cost = _rel(dense_attention_f64(_dequantized(q), _dequantized(k), v), dense_attention_f64(q, k, v))
    assert 0.02 < dense_cost < 0.1  # e4m3 rounds each element by up to 1/16
    assert _rel(fp8, full) < 1.25 * dense_cost
    assert _rel(*target_only) < 1.25 * dense_cost  # target-only queries (a context cache's): the same bound


def test_fp8_scores_refuse_gradients_and_small_heads():
    q, k, v = (x.requires_grad_() for x in _qkv(96, seed=63))
    with pytest.raises(IsaInputError, match="a call that needs gradients"):
        isa_attention(q, k, v, 32, block=16, tiles=FP8_TILES)
    q, k, v = _qkv(96, seed=64, d=16)
    with torch.no_grad(), pytest.raises(IsaInputError, match="got head dim 16"):
        isa_attention(q, k, v, 32, block=16, tiles=FP8_TILES)


@pytest.mark.skipif(ON_GPU, reason="the CPU run of the benchmark's measurement (the GPU runs the script itself)")
def test_fp8_benchmark_measures_on_the_interpreter(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "benchmarks"))
    bench = benchmark_tool("isa_fp8")
    shape = bench.Shape((2, 8, 8), heads=2, dim=32)
    q, k, v = (x.float() for x in bench.video_like_qkv(shape, "cpu", seed=0))  # the interpreter's bf16 is off
    q, k = bench.qk_normed(q, k)
    row = bench.rows_for(q, k, v, shape.n_part, load_config("small").model.isa.kernel_config(), 32, 2)
    assert 0 < row["fp8_vs_bf16_rel_l2"] < 0.1
    assert row["fp8_vs_f64"]["rel_l2"] > row["bf16_vs_f64"]["rel_l2"]  # fp32 ISA here: its error is the method's
    assert bench.main(["--shapes", "32K"]) == 2
    assert capsys.readouterr().err.strip() == "error: this benchmark needs a CUDA GPU (fp8 tensor cores)"
