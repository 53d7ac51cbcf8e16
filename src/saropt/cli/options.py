"""Options and helpers shared by saropt's commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click


def echo_json(obj: Any) -> None:
    """Print one JSON object on stdout."""
    click.echo(json.dumps(obj, indent=2, sort_keys=False, default=_default))


def _default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def progress_enabled(ctx: click.Context | None = None) -> bool:
    """Progress bars show on an interactive terminal unless -q was given."""
    ctx = ctx or click.get_current_context(silent=True)
    quiet = bool(ctx and ctx.obj and ctx.obj.get("quiet"))
    return not quiet and sys.stderr.isatty()


@contextmanager
def train_progress(
    ctx: click.Context, epoch_line: Callable[[dict[str, Any]], str]
) -> Iterator[Callable[[dict[str, Any]], None] | None]:
    """A progress callback for the trainers' events, or ``None`` when progress is off.

    ``step`` events (epoch, epochs, step, steps, loss) drive one bar per epoch; at each ``epoch`` event the bar
    closes and ``epoch_line(event)`` is printed above it.
    """
    if not progress_enabled(ctx):
        yield None
        return
    from tqdm.auto import tqdm

    bar: list[Any] = [None]

    def update(ev: dict[str, Any]) -> None:
        if ev["event"] == "step":
            desc = f"epoch {ev['epoch']}/{ev['epochs']}"
            if bar[0] is None or bar[0].desc != desc:
                if bar[0] is not None:
                    bar[0].close()
                bar[0] = tqdm(total=ev["steps"], desc=desc, unit="batch", leave=False)
            bar[0].n = ev["step"]
            bar[0].set_postfix(loss=f"{ev['loss']:.4f}")
            bar[0].refresh()
        elif ev["event"] == "epoch":
            if bar[0] is not None:
                bar[0].close()
                bar[0] = None
            tqdm.write(epoch_line(ev))

    try:
        yield update
    finally:
        if bar[0] is not None:
            bar[0].close()
