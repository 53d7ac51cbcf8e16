"""Options and helpers shared by saropt's commands."""

from __future__ import annotations

import json
import sys
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
