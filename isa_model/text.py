"""The instruction: open_clip's text tower and tokenizer (`TextEncoder`), and with `model.text_attention` the
words' cross-attention of every block (`WordAttention`). Without it the model reads one pooled vector per
instruction, which adaLN gives every token alike; with it `encode_text` also returns each token's vector, and a
token can read the words that name its place."""

from __future__ import annotations

import open_clip
import torch
import torch.nn as nn
import torch.nn.functional as F
from open_clip.model import CLIPTextCfg, _build_text_tower

from isa_model.config import ModelConfig

RANDOM_INIT = "random-init"


def pooled_text(text: torch.Tensor) -> torch.Tensor:
    """`encode_text`'s pooled vector (B, dim), whether or not it carries the tokens' (text_attention)."""
    return text[:, 0] if text.dim() == 3 else text


def text_words(text: torch.Tensor) -> torch.Tensor | None:
    """`encode_text`'s token vectors (B, L, dim), or None without text_attention."""
    return text[:, 1:] if text.dim() == 3 else None


class TextEncoder(nn.Module):
    """open_clip's text tower and tokenizer; random-init unless `text_weights` names a CLIP checkpoint."""

    def __init__(self, cfg: ModelConfig, out_dim: int) -> None:
        super().__init__()
        text_cfg = dict(open_clip.get_model_config(cfg.text_model)["text_cfg"])
        for key, value in (("width", cfg.text_width), ("layers", cfg.text_layers), ("heads", cfg.text_heads)):
            if value:
                text_cfg[key] = value
        text_cfg["context_length"] = cfg.text_context
        text_cfg["output_tokens"] = cfg.text_attention
        self.tower = _build_text_tower(out_dim, CLIPTextCfg(**text_cfg))
        self.words = nn.Linear(text_cfg["width"], out_dim) if cfg.text_attention else None
        self.tokenizer = open_clip.get_tokenizer(cfg.text_model, context_length=cfg.text_context)
        self.weights_id = RANDOM_INIT
        if cfg.text_weights:
            self.weights_id = self._load(cfg.text_weights)

    def _load(self, path: str) -> str:
        from safetensors.torch import load_file

        state = load_file(path) if path.endswith(".safetensors") else torch.load(path, map_location="cpu",
                                                                                 weights_only=True)
        own = self.tower.state_dict()
        text = {k: v for k, v in state.items() if k in own and k != "text_projection" and v.shape == own[k].shape}
        missing = [k for k in own if k not in text and k != "text_projection"]
        if missing:
            raise ValueError(f"text weights {path}: {len(missing)} text-tower tensors missing (e.g. {missing[0]})")
        self.tower.load_state_dict(text, strict=False)
        return f"open_clip:{self.tokenizer.__class__.__name__}:{path.rsplit('/', 1)[-1]}"

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        return self.tokenizer(texts)  # (B, L) int64

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, out_dim) pooled; with text_attention (B, 1 + L, out_dim): the pooled vector, then each token's."""
        if self.words is None:
            return self.tower(tokens)  # (B, out_dim)
        pooled, words = self.tower(tokens)  # (B, out_dim), (B, L, width)
        return torch.cat([pooled[:, None], self.words(words)], dim=1)  # (B, 1 + L, out_dim)


class WordAttention(nn.Module):
    """Cross-attention from every video token to the instruction's tokens (model.text_attention). The pooled
    vector in adaLN tells every token the same thing; here a token can read the words that concern its place
    ("in the top right"). The output layer starts at zero, so a new model is the one without it."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.norm = nn.LayerNorm(cfg.dim, elementwise_affine=False, eps=1e-6)
        self.q = nn.Linear(cfg.dim, cfg.dim)
        self.kv = nn.Linear(cfg.dim, 2 * cfg.dim)
        self.out = nn.Linear(cfg.dim, cfg.dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
        """x (B, N, dim), words (B, L, dim) -> what the words add to x, (B, N, dim)."""
        b, n, dim = x.shape
        q = self.q(self.norm(x)).view(b, n, self.heads, -1).transpose(1, 2)  # (B, H, N, D)
        k, v = self.kv(words).view(b, words.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)  # 2 x (B, H, L, D)
        o = F.scaled_dot_product_attention(q, k, v)  # (B, H, N, D)
        return self.out(o.transpose(1, 2).reshape(b, n, dim))
