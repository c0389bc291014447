"""model.text_attention: every block also attends to the instruction's tokens, beside the pooled vector that
adaLN gives every token alike. A new model equals the one without it, the words reach the output once their
layer moves, and the context cache and guidance carry them."""

from __future__ import annotations

import pytest
import torch
from _isa_model_helpers import tiny
from test_isa_model import _inputs, _model

from isa_model.config import ConfigError, load_config
from isa_model.model import LIVEditor
from isa_model.sample import euler_sample


def test_a_new_model_with_words_is_the_model_without_them():
    """The words' output layers start at zero, so the extra weights change nothing until training moves them."""
    torch.manual_seed(0)
    words = LIVEditor(tiny(text_attention=True).model).eval()
    plain = LIVEditor(tiny().model).eval()
    keys = plain.load_state_dict(words.state_dict(), strict=False)
    assert not keys.missing_keys
    assert keys.unexpected_keys and all(".words." in k or k.startswith("text.words.") for k in keys.unexpected_keys)
    x, t, src, text = _inputs(words)
    assert text.shape[:2] == (2, 1 + tiny().model.text_context)  # the pooled vector, then each token's
    with torch.no_grad():
        torch.testing.assert_close(words(x, t, src, text), plain(x, t, src, plain.encode_text(
            plain.text.tokenize(["invert the colours", "make it sepia"]))))


def test_the_words_reach_the_output_and_a_training_step_reaches_them():
    model = _model(text_attention=True).train()  # its words' output layers randomised, as after training
    x, t, src, text = _inputs(model)
    out = model(x, t, src, text)
    out.square().mean().backward()
    for block in model.blocks:
        assert block.words is not None and block.words.q.weight.grad.abs().sum() > 0
    assert model.text.words is not None and model.text.words.weight.grad.abs().sum() > 0
    with torch.no_grad():  # the same pooled vector with other token vectors: another output
        other = text.clone()
        other[:, 1:] = torch.randn_like(other[:, 1:])
        assert not torch.allclose(model(x, t, src, other), out, atol=1e-4)


def test_the_context_cache_and_guidance_carry_the_words():
    model = _model(text_attention=True, context_cache=True, attention="dense")
    x, t, src, text = _inputs(model)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_cached(x, t, text, model.encode_context(src, text)),
                                   model(x, t, src, text), rtol=1e-5, atol=1e-5)
    tokens = model.text.tokenize(["add a red object in the top right", "add a red object on the left"])
    noise = torch.randn(src.shape, generator=torch.Generator().manual_seed(3))
    cached = euler_sample(model, src, tokens, noise, steps=2, guidance=2.0, use_cache=True)
    torch.testing.assert_close(cached, euler_sample(model, src, tokens, noise, steps=2, guidance=2.0,
                                                    use_cache=False), rtol=1e-5, atol=1e-5)


def test_text_attention_is_a_checked_flag_with_a_train_switch():
    from isa_model.__main__ import _overrides, _parser
    with pytest.raises(ConfigError, match="model.text_attention must be true or false, got 'yes'"):
        tiny(text_attention="yes")
    args = _parser().parse_args(["train", "--config", "tiny", "--out", "run", "--text-attention", "on"])
    assert tiny().model.text_attention is False
    assert load_config("tiny", _overrides(args)).model.text_attention is True
