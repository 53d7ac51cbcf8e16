"""Running the ``saropt`` command inside the test process, its error handling included."""

from __future__ import annotations

import contextlib
import io


def run_cli(args: list[str]) -> tuple[int, str]:
    """Run ``saropt ARGS`` through :func:`saropt.cli.main.main`; the exit status and the output (stdout and
    stderr together)."""
    from saropt.cli.main import main

    buf = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        try:
            main(args)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, buf.getvalue()
