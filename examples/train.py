"""Train an example on its synthetic data set: a teacher to distil from, in seconds on a CPU.

    python -m examples.train tabular_mlp --rows 4000 --epochs 20 --out teacher.pt \
        --data data.npz --eval-data eval.npz

writes the trained state dict (``--out``), the data set it was trained on (``--data``: one
array per input and ``labels``), which is what `modelyard distill` takes, and optionally fresh
rows from the same rule that the teacher never saw (``--eval-data``, drawn with seed + 1).
Plain supervised training with cross-entropy and Adam; seeded, so a run is repeatable on the
same machine.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn


def fit(
    model: nn.Module,
    data: Mapping[str, np.ndarray],
    *,
    epochs: int,
    lr: float = 3e-3,
    batch_size: int = 64,
    seed: int = 0,
) -> nn.Module:
    """Cross-entropy on ``data["labels"]``; every other array is an input, in order."""
    inputs = [torch.from_numpy(v) for k, v in data.items() if k != "labels"]
    labels = torch.from_numpy(data["labels"])
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    order = np.random.default_rng(seed)
    model.train()
    for _ in range(epochs):
        for index in np.array_split(order.permutation(len(labels)), len(labels) // batch_size):
            rows = torch.from_numpy(index)
            logits = model(*[x[rows] for x in inputs])
            loss = nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), labels[rows].reshape(-1)
            )
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
    return model.eval()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.train", description=__doc__)
    parser.add_argument("example", choices=("tabular_mlp", "image_classifier", "tiny_lm"))
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="the trained state dict")
    parser.add_argument("--data", type=Path, required=True, help="the data set (.npz)")
    parser.add_argument("--eval-data", type=Path, help="also write unseen rows here (.npz)")
    parser.add_argument("--eval-rows", type=int, default=1000)
    args = parser.parse_args(argv)
    example = importlib.import_module(f"examples.{args.example}")
    torch.set_num_threads(1)  # small models train fastest on one thread
    data = example.synthetic_data(args.rows, seed=args.seed)
    torch.manual_seed(args.seed)
    model = fit(example.build(), data, epochs=args.epochs, seed=args.seed)
    torch.save(model.state_dict(), args.out)
    np.savez(args.data, **data)
    print(f"wrote {args.out} and {args.data} ({args.rows} rows)")
    if args.eval_data:
        np.savez(args.eval_data, **example.synthetic_data(args.eval_rows, seed=args.seed + 1))
        print(f"wrote {args.eval_data} ({args.eval_rows} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
