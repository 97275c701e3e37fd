"""A tiny causal transformer language model in plain torch: 16 token ids -> next-token logits
for every position (vocabulary 64). Inputs are int64 token ids; the batch axis is dynamic.

``build_student`` (width 16, one block) is the student for `modelyard distill`;
``synthetic_data`` draws token sequences from a fixed Markov chain (each token has a few likely
successors), so a trained model has a perplexity well under the vocabulary size.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

VOCAB, CONTEXT, WIDTH, HEADS, LAYERS = 64, 16, 32, 4, 2
INPUTS = (f"tokens:1x{CONTEXT}:int64",)
OUTPUTS = ("logits",)


class CausalSelfAttention(nn.Module):
    mask: torch.Tensor

    def __init__(self, width: int = WIDTH, heads: int = HEADS) -> None:
        super().__init__()
        self.width, self.heads = width, heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        mask = torch.triu(torch.full((CONTEXT, CONTEXT), float("-inf")), diagonal=1)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, steps, _ = x.shape
        q, k, v = self.qkv(x).split(self.width, dim=2)
        head = self.width // self.heads
        q, k, v = (t.reshape(batch, steps, self.heads, head).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(head) + self.mask[:steps, :steps]
        out = torch.softmax(scores, dim=-1) @ v
        merged = out.transpose(1, 2).reshape(batch, steps, self.width)
        projected: torch.Tensor = self.proj(merged)
        return projected


class Block(nn.Module):
    def __init__(self, width: int = WIDTH, heads: int = HEADS) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attention = CausalSelfAttention(width, heads)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        out: torch.Tensor = x + self.mlp(self.norm2(x))
        return out


class TinyLM(nn.Module):
    def __init__(self, width: int = WIDTH, heads: int = HEADS, layers: int = LAYERS) -> None:
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, width)
        self.positions = nn.Embedding(CONTEXT, width)
        self.blocks = nn.Sequential(*(Block(width, heads) for _ in range(layers)))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, VOCAB, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        steps = tokens.shape[1]
        positions = torch.arange(steps, device=tokens.device)
        x = self.tokens(tokens) + self.positions(positions)
        logits: torch.Tensor = self.head(self.norm(self.blocks(x)))
        return logits


def build() -> nn.Module:
    return TinyLM()


def build_student() -> nn.Module:
    """Width 16, 2 heads, one block: 5,616 parameters against the teacher's 30,080."""
    return TinyLM(width=16, heads=2, layers=1)


def sample_inputs(batch: int = 8) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    return {"tokens": torch.randint(0, VOCAB, (batch, CONTEXT), generator=generator)}


def synthetic_data(rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``tokens`` (rows x 16, int64) and ``labels``, the next token at every position, drawn
    from a fixed Markov chain: each token is followed by one of three tokens with probabilities
    0.6, 0.3 and 0.1 (an entropy of 0.90 nats: perplexity 2.46 for a model that learns it)."""
    rule = np.random.default_rng(1234)
    successors = np.stack([rule.choice(VOCAB, size=3, replace=False) for _ in range(VOCAB)])
    rng = np.random.default_rng(seed)
    sequence = np.empty((rows, CONTEXT + 1), dtype=np.int64)
    sequence[:, 0] = rng.integers(0, VOCAB, size=rows)
    for t in range(1, CONTEXT + 1):
        pick = rng.choice(3, size=rows, p=[0.6, 0.3, 0.1])
        sequence[:, t] = successors[sequence[:, t - 1], pick]
    return {"tokens": sequence[:, :-1], "labels": sequence[:, 1:]}
