"""A tiny causal transformer language model in plain torch: 16 token ids -> next-token logits
for every position (vocabulary 64). Inputs are int64 token ids; the batch axis is dynamic."""

from __future__ import annotations

import math

import torch
from torch import nn

VOCAB, CONTEXT, WIDTH, HEADS, LAYERS = 64, 16, 32, 4, 2
INPUTS = (f"tokens:1x{CONTEXT}:int64",)
OUTPUTS = ("logits",)


class CausalSelfAttention(nn.Module):
    mask: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(WIDTH, 3 * WIDTH)
        self.proj = nn.Linear(WIDTH, WIDTH)
        mask = torch.triu(torch.full((CONTEXT, CONTEXT), float("-inf")), diagonal=1)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, steps, _ = x.shape
        q, k, v = self.qkv(x).split(WIDTH, dim=2)
        shape = (batch, steps, HEADS, WIDTH // HEADS)
        q, k, v = (t.reshape(shape).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(WIDTH // HEADS) + self.mask[:steps, :steps]
        out = torch.softmax(scores, dim=-1) @ v
        projected: torch.Tensor = self.proj(out.transpose(1, 2).reshape(batch, steps, WIDTH))
        return projected


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(WIDTH), nn.LayerNorm(WIDTH)
        self.attention = CausalSelfAttention()
        self.mlp = nn.Sequential(
            nn.Linear(WIDTH, 4 * WIDTH), nn.GELU(), nn.Linear(4 * WIDTH, WIDTH)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        out: torch.Tensor = x + self.mlp(self.norm2(x))
        return out


class TinyLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, WIDTH)
        self.positions = nn.Embedding(CONTEXT, WIDTH)
        self.blocks = nn.Sequential(*(Block() for _ in range(LAYERS)))
        self.norm = nn.LayerNorm(WIDTH)
        self.head = nn.Linear(WIDTH, VOCAB, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        steps = tokens.shape[1]
        positions = torch.arange(steps, device=tokens.device)
        x = self.tokens(tokens) + self.positions(positions)
        logits: torch.Tensor = self.head(self.norm(self.blocks(x)))
        return logits


def build() -> nn.Module:
    return TinyLM()


def sample_inputs(batch: int = 8) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    return {"tokens": torch.randint(0, VOCAB, (batch, CONTEXT), generator=generator)}
