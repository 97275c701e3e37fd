"""How a training command shows its progress: a rich progress bar with the running loss on a
terminal, and one line per epoch always (so logs and pipes see progress too), on stderr.

``distill`` talks to the ``TrainingProgress`` protocol; ``Silent`` is for callers that print
their own (the benchmark). rich comes with the ``export`` extra and is imported lazily.
"""

from __future__ import annotations

import types
from typing import Any, Protocol

from modelyard_cli.models.onnx_model import need


class TrainingProgress(Protocol):
    def begin(self, epochs: int, steps_per_epoch: int) -> None: ...

    def step(self, epoch: int, running_loss: float) -> None: ...

    def epoch_done(self, epoch: int, loss: float) -> None: ...


class Silent:
    def begin(self, epochs: int, steps_per_epoch: int) -> None:
        pass

    def step(self, epoch: int, running_loss: float) -> None:
        pass

    def epoch_done(self, epoch: int, loss: float) -> None:
        pass


class RichProgress:
    """A context manager: the bar is drawn from ``begin`` until ``__exit__``."""

    def __init__(self, what: str) -> None:
        progress = need("rich.progress")
        console = need("rich.console").Console(stderr=True)
        self._what = what
        self._epochs = 0
        self._bar: Any = progress.Progress(
            progress.TextColumn("{task.description}"),
            progress.BarColumn(),
            progress.MofNCompleteColumn(),
            progress.TextColumn("steps"),
            progress.TimeElapsedColumn(),
            progress.TimeRemainingColumn(),
            console=console,
        )
        self._task: Any = None

    def __enter__(self) -> RichProgress:
        return self  # the bar appears at ``begin``: failures before training stay one line

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: types.TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._bar.stop()

    def begin(self, epochs: int, steps_per_epoch: int) -> None:
        self._epochs = epochs
        self._task = self._bar.add_task(self._what, total=epochs * steps_per_epoch)
        self._bar.start()

    def step(self, epoch: int, running_loss: float) -> None:
        self._bar.update(
            self._task,
            advance=1,
            description=f"{self._what} epoch {epoch}/{self._epochs} loss {running_loss:.4f}",
        )

    def epoch_done(self, epoch: int, loss: float) -> None:
        self._bar.console.print(f"epoch {epoch}/{self._epochs}: loss {loss:.4f}")
