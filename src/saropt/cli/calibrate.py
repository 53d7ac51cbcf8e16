"""``saropt calibrate``: measure the seamline filter on your own scenes before building."""

from __future__ import annotations

from pathlib import Path

import click

from saropt.cli.build import _progress_bar, make_config

_HELP = """Measure the seamline filter on your scenes: false alarms and detection of injected seams.

\b
  saropt calibrate CONFIG.yaml [--set key.sub=value ...]
  saropt calibrate --sar SAR --optical OPT [--tiepoints FILE | --aligned] [--patch-size 256]

No real scene comes with its mosaicking seamlines marked, so this scores every patch of each scene pair as a
build would (8-bit mapping, registration, the scene as the seamline context) as it is, and again with a
straight brightness or colour step (--offsets, grey levels) added to the registered optical along random lines
(--trials per scene and offset). It prints, for several values of quality.seamline_max, the share of clean
patches flagged (false alarms: mostly real boundaries the SAR does not show) and of patches crossed by a seam
that are flagged, and the smallest threshold that keeps false alarms at or below 1%. The "clean" patches are
your scenes as given: if they hold real seamlines, some false alarms are real; --png draws the highest-scoring
ones. Large scenes are read in their central --max-side window. Nothing else is written.
"""


@click.command("calibrate", help=_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--sar", type=click.Path(path_type=Path), help="SAR image, or a folder of them.")
@click.option("--optical", type=click.Path(path_type=Path), help="Optical image, or a folder of them.")
@click.option("--tiepoints", help="Tie points, or gcps / geocoding / identity / auto (as saropt build).")
@click.option(
    "--tiepoints-format", type=click.Choice(["csv", "qgis", "checkpoints"]), help="Tie-point file format."
)
@click.option("--tiepoints-origin", type=click.IntRange(0, 1), help="Pixel origin of a checkpoints file [0].")
@click.option("--aligned", is_flag=True, help="The images share one pixel grid: identity registration.")
@click.option("--patch-size", type=int, help="Patch side in pixels [256].")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override any configuration key.")
@click.option("--offsets", default="40,60", show_default=True, help="Seam offsets in grey levels.")
@click.option("--trials", type=click.IntRange(1, 100), default=3, show_default=True, help="Seams per scene.")
@click.option("--stride", type=click.IntRange(1), help="Patch stride [a quarter of the patch size].")
@click.option("--max-side", type=click.IntRange(64), default=4096, show_default=True, help="Window read.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random lines.")
@click.option(
    "--png",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Draw the highest-scoring clean patches here (real seams, or boundaries the SAR does not show?).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def calibrate(
    ctx: click.Context,
    config: Path | None,
    sar: Path | None,
    optical: Path | None,
    tiepoints: str | None,
    tiepoints_format: str | None,
    tiepoints_origin: int | None,
    aligned: bool,
    patch_size: int | None,
    sets: tuple[str, ...],
    offsets: str,
    trials: int,
    stride: int | None,
    max_side: int,
    seed: int,
    png: Path | None,
    as_json: bool,
) -> None:
    from saropt.dataset.calibrate import calibrate as run
    from saropt.dataset.calibrate import format_calibration
    from saropt.dataset.plan import resolve_plan
    from saropt.errors import ConfigError

    try:
        offs = [float(v) for v in offsets.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--offsets must be numbers separated by commas, got {offsets!r}") from None
    if not offs or any(o == 0 for o in offs):
        raise ConfigError(f"--offsets must be non-zero grey levels, got {offsets!r}")
    cfg = make_config(
        config=config,
        sar=sar,
        optical=optical,
        tiepoints=tiepoints,
        tiepoints_format=tiepoints_format,
        tiepoints_origin=tiepoints_origin,
        aligned=aligned,
        patch_size=patch_size,
        sets=sets,
        need_out=False,
    )
    plan = resolve_plan(cfg)
    with _progress_bar(ctx, desc="calibrate", unit="region", enabled=not as_json) as progress:
        res = run(
            plan,
            offsets=offs,
            trials=trials,
            stride=stride,
            max_side=max_side,
            seed=seed,
            png=png,
            progress=progress,
        )
    if as_json:
        from saropt.cli.options import echo_json

        echo_json(res)
        return
    click.echo(format_calibration(res))
