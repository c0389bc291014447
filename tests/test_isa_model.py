"""LIVEditor model: shapes, patches, RoPE, ISA vs dense, the context K/V cache, metrics, sampling."""

from __future__ import annotations

import dataclasses
import json
import warnings

import pytest
import torch
from _isa_device import DEVICE, ON_GPU
from _isa_model_helpers import tiny

from isa_model.config import CONFIG_DIR, ConfigError, IsaSettings, load_config
from isa_model.metrics import psnr, ssim
from isa_model.model import LIVEditor, attention, patchify, rms_norm, rope_3d, unpatchify
from isa_model.sample import euler_sample
from kernels import isa_attention


def _model(**changes) -> LIVEditor:
    """The tiny model with its zero-initialised (adaLN-Zero) layers randomised, so every path matters."""
    torch.manual_seed(0)
    model = LIVEditor(tiny(**changes).model).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ada" in name or name.startswith("out.") or ".words.out." in name:
                p.normal_(0, 0.05)
    return model


def _inputs(model: LIVEditor, b: int = 2):
    """Seeded inputs on the model's device (drawn on the CPU, so every device gets the same values)."""
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(1)
    cfg = model.cfg
    shape = (b, cfg.channels, cfg.frames, cfg.height, cfg.width)
    x, src = torch.randn(shape, generator=g).to(device), torch.randn(shape, generator=g).to(device)
    text = model.encode_text(model.text.tokenize(["invert the colours", "make it sepia"][:b]).to(device))
    return x, torch.tensor([0.3, 0.8][:b], device=device), src, text


def test_patchify_roundtrip_and_token_order():
    video = torch.randn(2, 3, 4, 16, 24)
    tokens = patchify(video, (2, 8, 8))
    assert tokens.shape == (2, 2 * 2 * 3, 3 * 2 * 8 * 8)
    assert torch.equal(unpatchify(tokens, (2, 8, 8), (2, 2, 3), 3), video)
    # token 1 is the patch one step to the right (w fastest), its first value is pixel (t=0, h=0, w=8)
    assert tokens[0, 1, 0] == video[0, 0, 0, 0, 8]


def test_rope_tables_start_at_zero_and_rotate_by_axis():
    cos, sin = rope_3d((2, 3, 4), 32)
    assert cos.shape == (24, 16)
    assert torch.allclose(cos[0], torch.ones(16)) and torch.allclose(sin[0], torch.zeros(16))
    # moving along w changes only the w channels; along t only the t channels (head dim 32 -> 8/12/12)
    assert torch.allclose(sin[1, :10], torch.zeros(10)) and sin[1, 10:].abs().sum() > 0
    assert sin[12, :4].abs().sum() > 0 and torch.allclose(sin[12, 4:], torch.zeros(12))


def test_forward_shapes_and_text_provenance():
    model = _model()
    x, t, src, text = _inputs(model)
    assert text.shape == (2, model.cfg.dim)
    out = model(x, t, src, text)
    assert model.cfg.blend_mask  # tiny's: the velocity's channels, then the blend mask's logit
    assert out.shape == (2, 4, *x.shape[2:]) and torch.isfinite(out).all()
    assert model.text.weights_id == "random-init"


def test_qk_rms_norm_equals_torch_and_bf16_autocast_forward_is_warning_free():
    """The qk-RMSNorm casts its weight to the input's dtype: in fp32 it equals nn.RMSNorm; under bf16
    autocast the model runs torch's fused path (no dtype-mismatch warning on every call), close to fp32."""
    norm = torch.nn.RMSNorm(32, eps=1e-6)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    h = torch.randn(2, 3, 5, 32)
    torch.testing.assert_close(rms_norm(h, norm), norm(h))
    model = _model(attention="dense")
    x, t, src, text = _inputs(model)
    with torch.no_grad():
        ref = model(x, t, src, text)
        with warnings.catch_warnings(), torch.autocast("cpu", dtype=torch.bfloat16):
            warnings.simplefilter("error")
            out = model(x, t, src, text)
    assert ((out.float() - ref).norm() / ref.norm()).item() < 0.05


def test_config_rejects_bad_head_dim_and_unknown_keys():
    with pytest.raises(ConfigError, match="power of two"):
        tiny(dim=96, heads=2)
    with pytest.raises(ConfigError, match="unknown key"):
        tiny(colour="red")


def test_train_flags_override_checked_config_fields():
    from isa_model.__main__ import _overrides, _parser

    with pytest.raises(ConfigError, match="compile"):
        tiny(compile="yes")
    for flag, value in (("on", True), ("off", False)):
        args = _parser().parse_args(["train", "--config", "tiny", "--out", "run", "--compile", flag])
        assert load_config("tiny", _overrides(args)).model.compile is value
    args = _parser().parse_args(["train", "--config", "tiny", "--out", "run", "--batch-size", "16", "--lr", "6e-4",
                                 "--crop", "centre"])
    cfg = load_config("tiny", _overrides(args))
    assert (cfg.data.batch_size, cfg.train.lr, cfg.data.crop) == (16, 6e-4, "centre")
    assert load_config("tiny").data.crop == "random"
    with pytest.raises(ConfigError, match="data.crop must be one of random, centre, got 'center'"):
        load_config("tiny", {"data": {"crop": "center"}})
    args = _parser().parse_args(["train", "--config", "small", "--out", "run", "--graph-plan-train", "off"])
    isa = load_config("small", _overrides(args)).model.isa
    assert not isa.graph_plan_train and (isa.alpha_f, isa.dropped_mean) == (0.125, True)  # the file's others kept
    args = _parser().parse_args(["train", "--config", "tiny", "--out", "run", "--batch-size", "0"])
    with pytest.raises(ConfigError, match="batch_size"):
        load_config("tiny", _overrides(args))
    args = _parser().parse_args(["train", "--config", "tiny", "--out", "run", "--decay-steps", "-1"])
    with pytest.raises(ConfigError, match="decay_steps"):
        load_config("tiny", _overrides(args))


def test_config_file_changes_its_base(tmp_path):
    """A variant states only what differs: it loads as its base with those changes (nested parts merged), under
    its own name; a base is a shipped name or a path beside the file; loops and bad bases are one-line errors."""
    (tmp_path / "half.json").write_text(json.dumps({"name": "half", "base": "small",
                                                    "model": {"isa": {"alpha_f": 0.125}}, "data": {"workers": 2}}))
    (tmp_path / "quarter.json").write_text(json.dumps({"base": "half.json", "train": {"lr": 1e-4}}))
    half, small = load_config(str(tmp_path / "half.json")), load_config("small")
    assert half == dataclasses.replace(load_config("small", {"model": {"isa": {"alpha_f": 0.125}},
                                                             "data": {"workers": 2}}), name="half")
    assert half.model.isa.dropped_mean == small.model.isa.dropped_mean and half.model.dim == small.model.dim
    quarter = load_config(str(tmp_path / "quarter.json"), {"train": {"steps": 7}})
    assert (quarter.name, quarter.model.isa.alpha_f, quarter.train.lr, quarter.train.steps) == (
        "custom", 0.125, 1e-4, 7)
    (tmp_path / "loop.json").write_text(json.dumps({"base": "loop.json"}))
    with pytest.raises(ConfigError, match="loop.json: its base chain loops"):
        load_config(str(tmp_path / "loop.json"))
    (tmp_path / "bad.json").write_text(json.dumps({"base": ["small"]}))
    with pytest.raises(ConfigError, match="base must be a config name or path"):
        load_config(str(tmp_path / "bad.json"))
    (tmp_path / "odd.json").write_text(json.dumps({"model": 5}))
    (tmp_path / "on_odd.json").write_text(json.dumps({"base": "odd.json", "model": {"dim": 64}}))
    for odd in ("odd.json", "on_odd.json"):  # a section that is no object is refused, whatever changes it
        with pytest.raises(ConfigError, match="model: must be a JSON object, got 5"):
            load_config(str(tmp_path / odd), {"model": {"dim": 64}})
    (tmp_path / "missing.json").write_text(json.dumps({"base": "nowhere.json"}))
    with pytest.raises(ConfigError, match="'nowhere.json': no such file"):
        load_config(str(tmp_path / "missing.json"))


def test_learning_rate_warms_up_holds_and_decays_over_the_last_steps():
    """Warmup-stable-decay: more steps on a resume move the decay and leave the steps before it alone."""
    from isa_model.__main__ import _overrides, _parser
    from isa_model.train import lr_at

    def lrs(*flags: str) -> list[float]:
        args = _parser().parse_args(["train", "--config", "tiny", "--out", "run", "--lr", "1e-3", *flags])
        cfg = load_config("tiny", _overrides(args))
        return [lr_at(step, cfg) for step in range(cfg.train.steps)]

    plain, short, long = lrs("--steps", "40"), lrs("--steps", "40", "--decay-steps", "10"), lrs(
        "--steps", "60", "--decay-steps", "10")
    warmup = load_config("tiny").train.warmup
    assert plain[warmup:] == [1e-3] * (40 - warmup)  # constant without a decay
    assert short[:30] == plain[:30] and long[:50] == plain + [1e-3] * 10  # the stable part never moves
    assert short[30:] == pytest.approx([1e-3 * (10 - i) / 10 for i in range(10)])  # linear, last step lr / 10
    assert long[50:] == short[30:]


@pytest.mark.parametrize("flag", ["graph_plan_train", "graph_call_train"])
def test_graph_flags_are_checked_isa_fields(flag):
    from isa_model.__main__ import _overrides, _parser
    with pytest.raises(ConfigError, match=f"model.isa.{flag} must be true or false, got 'yes'"):
        tiny(isa={flag: "yes"})
    assert getattr(tiny(isa={flag: True}).model.isa, flag) is True
    assert getattr(tiny().model.isa, flag) is False  # the CPU tests' config: the graphs are CUDA-only anyway
    args = _parser().parse_args(["train", "--config", "small", "--out", "run", f"--{flag.replace('_', '-')}", "on"])
    assert getattr(load_config("small", _overrides(args)).model.isa, flag) is True


def test_fp8_scores_sample_near_the_same_model_and_refuse_training(tmp_path):
    """model.isa.fp8_scores (validate --isa-fp8 on): the Triton kernels' exact scores from e4m3 q and k. The same
    weights sample within a few percent of their full-precision output, and not equal to it; training refuses."""
    outs = []
    for fp8 in (False, True):
        model = _model(isa={"backend": "triton", "fp8_scores": fp8}).to(DEVICE)
        with torch.no_grad():
            outs.append(model(*_inputs(model)).double())
    rel = ((outs[1] - outs[0]).norm() / outs[0].norm()).item()
    assert 0 < rel < 0.05
    with pytest.raises(ConfigError, match="fp8_scores needs the triton backend"):
        tiny(isa={"fp8_scores": True})  # tiny's backend is the torch oracle
    with pytest.raises(ConfigError, match="model.isa.fp8_scores must be true or false"):
        tiny(isa={"backend": "triton", "fp8_scores": 1})
    from isa_model.train import train
    with pytest.raises(ConfigError, match="fp8_scores is for sampling"):
        train(tiny(isa={"backend": "triton", "fp8_scores": True}), tmp_path)


def test_small_trains_as_its_full_length_run_did():
    """`small` is the recipe of the 2026-12-06 05:07 run (docs/MODEL.md, "`small` as it ships, full length"):
    compiled blocks, the whole ISA call graphed, alpha_f 0.125, each token's place in its clip, the place its
    instruction names, batch 16. Its GPU tests passed (graphed plan: H200, 2026-12-04; graphed call: H100,
    2026-12-05 and 2026-12-06)."""
    cfg = load_config("small")
    isa = cfg.model.isa
    assert (isa.graph_plan_train, isa.graph_call_train, cfg.model.compile, cfg.model.clip_coords,
            cfg.model.layout) == (True,) * 5
    assert (isa.alpha_f, cfg.data.batch_size) == (0.125, 16)


@pytest.mark.parametrize("words", [False, True], ids=["pooled-text", "text-attention"])
def test_compiled_blocks_equal_eager_in_a_training_step(words):
    """model.compile runs each block's element-wise work through torch.compile (one region on either side of
    the attention call, the words' cross-attention in the second): the same output and gradients as eager, and
    one graph per region for every block. Inductor's C++ is built unvectorised here, to keep the compiler's time
    down; the GPU build is Triton."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()  # reset() keeps them, and the other case counted its graphs
    results = []
    with torch._inductor.config.patch({"cpp.vec_isa_ok": False}):
        for compiled in (False, True):
            model = _model(compile=compiled, text_attention=words).train()
            out = model(*_inputs(model))
            out.square().mean().backward()
            results.append((out, {name: p.grad for name, p in model.named_parameters()}))
    (out, grads), (out_c, grads_c) = results
    torch.testing.assert_close(out_c, out, rtol=1e-4, atol=1e-5)
    assert grads.keys() == grads_c.keys()
    for name, grad in grads.items():
        assert grad is not None, name
        torch.testing.assert_close(grads_c[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 2  # both blocks share both regions


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.json")) + sorted(
    (CONFIG_DIR.parents[1] / "benchmarks" / "configs").glob("model_*.json")), ids=lambda p: p.name)
def test_shipped_and_benchmark_model_configs_load(path):
    """Every model config in the repository (shipped, and the benchmarks' ISA ablations) passes validation."""
    cfg = load_config(str(path))
    assert cfg.name and cfg.model.tokens_per_clip > 0


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_isa_with_every_block_exact_equals_dense(backend):
    """On the GPU where there is one: Triton interprets only where no GPU exists, so CPU tensors on a GPU host
    would reach the compiled kernels."""
    exact = IsaSettings(block=16, alpha_s=1.0, alpha_f=1.0, alpha_ns=1.0, backend=backend)
    isa, dense = _model(isa=dataclasses.asdict(exact)).to(DEVICE), _model(attention="dense").to(DEVICE)
    x, t, src, text = _inputs(isa, b=1)
    with torch.no_grad():
        a, b = isa(x, t, src, text), dense(x, t, src, text)
    if backend == "triton" and ON_GPU:  # fp32 dots run in TF32 there, the bound of test_isa_model_gpu.py
        assert (a - b).norm() / b.norm() < 5e-3
    else:
        assert torch.allclose(a, b, atol=1e-4), (a - b).abs().max()


@pytest.mark.parametrize("option", ["per_head_alpha_f", "mean_terms"])
def test_model_attention_passes_every_kernel_option(option):
    """A config's ISA options all reach the kernel: each one changes the model's attention, exactly as the
    kernel called with the same options does."""
    base = dict(block=16, alpha_s=1.0, alpha_f=0.25, alpha_ns=0.25, backend="torch")
    changed = {**base, option: not getattr(IsaSettings(), option)}
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(1, 2, 128, 16, generator=g) for _ in range(3))  # (B, H, N, D), 64 target + 64 context
    q[:, 0] *= 4.0  # head 0 much sharper than head 1, so a per-head budget moves sharp blocks to it
    outs = []
    for settings in (base, changed):
        cfg = tiny(isa=settings).model
        out = attention(q, k, v, 64, cfg)
        assert torch.equal(out, isa_attention(q, k, v, 64, config=cfg.isa.kernel_config(), backend="torch"))
        outs.append(out)
    assert not torch.allclose(outs[0], outs[1], atol=1e-4)


def test_default_isa_is_sparse_so_it_differs_from_dense():
    isa, dense = _model(), _model(attention="dense")
    x, t, src, text = _inputs(isa)
    with torch.no_grad():
        assert not torch.allclose(isa(x, t, src, text), dense(x, t, src, text), atol=1e-4)


@pytest.mark.parametrize("attention", ["isa", "dense"])
def test_context_cache_equals_uncached_in_its_own_mode(attention):
    model = _model(context_cache=True, attention=attention)
    x, t, src, text = _inputs(model)
    with torch.no_grad():
        uncached = model(x, t, src, text)
        cache = model.encode_context(src, text)
        cached = model.forward_cached(x, t, text, cache)
        assert torch.allclose(uncached, cached, atol=1e-5), (uncached - cached).abs().max()
        # the cache is the same at every step: a second step with another timestep still matches
        t2 = torch.tensor([0.1, 0.5])
        assert torch.allclose(model(x, t2, src, text), model.forward_cached(x, t2, text, cache), atol=1e-5)
        # and the mode is a different model from full in-context attention with the same weights
        full = LIVEditor(dataclasses.replace(model.cfg, context_cache=False)).eval()
        full.load_state_dict(model.state_dict())
        assert not torch.allclose(full(x, t, src, text), uncached, atol=1e-4)


def test_context_cache_needs_the_mode():
    model = _model()
    x, _, src, text = _inputs(model)
    with pytest.raises(ValueError, match="context_cache"):
        model.encode_context(src, text)


def test_sampling_cached_equals_uncached_and_guidance_changes_output():
    model = _model(context_cache=True, attention="dense")
    _, _, src, _ = _inputs(model)
    tokens = model.text.tokenize(["invert the colours", "make it sepia"])
    noise = torch.randn(src.shape, generator=torch.Generator().manual_seed(3))
    a = euler_sample(model, src, tokens, noise, steps=3, guidance=2.0, use_cache=True)
    b = euler_sample(model, src, tokens, noise, steps=3, guidance=2.0, use_cache=False)
    c = euler_sample(model, src, tokens, noise, steps=3, guidance=1.0)
    assert a.shape == src.shape and torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a, c, atol=1e-4)


def test_metrics():
    a = torch.zeros(1, 3, 2, 8, 8)
    b = a.clone()
    b[..., :4] = 0.2  # in [0, 1] units an error of 0.1 on half the pixels: mse 0.005
    assert psnr(a, b).item() == pytest.approx(10 * torch.log10(torch.tensor(1 / 0.005)).item(), rel=1e-5)
    mask = torch.zeros(1, 2, 8, 8)
    mask[..., 4:] = 1
    assert psnr(a, b, mask).item() > 90  # the changed half is outside the mask
    assert ssim(a, a).item() == pytest.approx(1.0, abs=1e-6) and ssim(a, b).item() < 1


class _ExactVelocity(LIVEditor):
    """The velocity field of rectified flow towards a known x0, v = (x_t - x0) / t: the sampler must land on x0."""

    x0: torch.Tensor

    def forward(self, x_t, t, source, text, box=None, layout=None):
        x0 = self.x0.repeat(x_t.shape[0] // self.x0.shape[0], 1, 1, 1, 1)
        return (x_t - x0) / t.view(-1, 1, 1, 1, 1)


@pytest.mark.parametrize("objective", ["noise", "source"])
def test_euler_sampler_follows_the_flow_to_the_data(objective):
    """Both paths are straight lines to x0, so v = (x_t - x0) / t lands on x0 from the noise or the source."""
    model = _ExactVelocity(tiny(attention="dense", objective=objective, blend_mask=False).model).eval()
    _, _, src, _ = _inputs(model)
    model.x0 = src.clamp(-1, 1) * 0.5
    noise = torch.randn(src.shape, generator=torch.Generator().manual_seed(4))
    out = euler_sample(model, src, model.text.tokenize(["a", "b"]), noise, steps=4, guidance=1.5)
    assert torch.allclose(out, model.x0, atol=1e-5)


def test_ema_decay_warms_up():
    from isa_model.train import ema_decay

    assert ema_decay(0, 0.999) == 0.1 and ema_decay(10**6, 0.999) == 0.999
