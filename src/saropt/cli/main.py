"""The ``saropt`` command.

Subcommands live in one module each (``saropt.cli.<name>``) and are imported only when invoked, so
``saropt --help`` stays fast. Errors derived from :class:`saropt.errors.SaroptError` (and common input errors)
are printed as one line, ``saropt: error: ...``, with a non-zero exit status; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from typing import Any

import click

from saropt import __version__
from saropt.errors import SaroptError

# name -> (module, attribute, short help)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "build": ("saropt.cli.build", "build", "Build a registered SAR-optical patch-pair dataset."),
    "inspect": ("saropt.cli.inspect", "inspect", "Summarise a dataset built by saropt."),
    "demo": ("saropt.cli.demo", "demo", "Build a dataset from a synthetic scene pair with known truth."),
    "register": ("saropt.cli.register", "register", "Register an optical image onto a SAR image."),
    "calibrate": (
        "saropt.cli.calibrate",
        "calibrate",
        "Measure the seamline filter on your scenes (false alarms, injected seams).",
    ),
    "data": ("saropt.cli.data", "data", "Validate and describe SAR-optical datasets."),
    "match": ("saropt.cli.match", "match", "Train and evaluate SAR-optical matching models."),
    "detect": ("saropt.cli.detect", "detect", "Train, evaluate and run SAR ship detectors."),
}

EXIT_ERROR = 1
EXIT_USAGE = 2


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, (mod, _, _) in _COMMANDS.items() if importlib.util.find_spec(mod) is not None]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return None
        module, attr, _ = _COMMANDS[cmd_name]
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                return None
            raise
        cmd = getattr(mod, attr)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [
            (name, help_) for name, (mod, _, help_) in _COMMANDS.items() if name in self.list_commands(ctx)
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("rasterio", "PIL", "matplotlib", "numexpr"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="saropt")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, debug: bool) -> None:
    """saropt: registered SAR-optical patch pairs, loaders, matching and ship detection."""
    _setup_logging(verbose, quiet)
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    ctx.obj["quiet"] = quiet


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``saropt`` console script."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        return cli.main(args=args, prog_name="saropt", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("saropt: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except SaroptError as exc:
        if debug:
            raise
        click.echo(f"saropt: error: {_one_line(exc)}", err=True)
        sys.exit(EXIT_ERROR)
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        if debug:
            raise
        click.echo(f"saropt: error: {_one_line(exc)}", err=True)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        click.echo("saropt: interrupted", err=True)
        sys.exit(130)
    except (MemoryError, OSError, ValueError, RuntimeError) as exc:
        # Not raised on purpose by saropt: still one line, with a way to see more.
        if debug:
            raise
        click.echo(
            f"saropt: error: {type(exc).__name__}: {_one_line(exc)} (run with --debug for the traceback)",
            err=True,
        )
        sys.exit(EXIT_ERROR)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


if __name__ == "__main__":  # pragma: no cover
    main()
