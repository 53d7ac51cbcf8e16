"""``saropt inspect``: summarise a dataset built by ``saropt build``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("inspect", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("root", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def inspect(root: Path, as_json: bool) -> None:
    """Summarise the saropt dataset in ROOT: pairs kept and rejected by reason, splits, registration residuals.

    \b
    --json prints one object with pairs_total, kept, rejected, rejected_by_reason (filter -> pairs; a pair
    flagged by two filters counts in both), splits (split -> kept pairs), registration_rmse_px (scene or
    scene/subregion -> RMSE in SAR pixels), patch_size, stride and overlap.
    """
    from saropt.dataset.summary import format_summary, inspect_dataset

    info = inspect_dataset(root)
    if as_json:
        from saropt.cli.options import echo_json

        echo_json(info)
        return
    click.echo(format_summary(info))
