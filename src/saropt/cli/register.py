"""``saropt register``: register an optical image onto a SAR image automatically (no manual tie points)."""

from __future__ import annotations

import click

from saropt.cli.options import echo_json

_HELP = """Register OPTICAL onto SAR automatically and write RESULT.json.

\b
  saropt register SAR OPTICAL -o RESULT.json [--model affine] [--tiepoints-out FILE.points|.csv]
                  [--overview PNG] [--prior geocoding|none] [--region COL,ROW,W,H]

Tie points come from structural features (oriented gradients, speckle-robust for SAR) matched by FFT template
matching at textured, well-spread places, coarse-to-fine from a full rotation and scale search (or from the
georeferencing when both images have it). Points below the reliability threshold are flagged, RANSAC flags
geometric outliers, nothing is deleted. RESULT.json holds optical_to_sar (3x3, pixel x=column, y=row, 0-based,
centres at integers, optical pixel -> SAR pixel), every tie point with score, inlier flag and residual, rmse_px,
loo_rmse_px, n_tiepoints, n_inliers and seconds. An overview PNG (checkerboard of SAR and warped optical, tie
points coloured by residual) is written beside RESULT.json unless --overview '' is given.
"""

MODELS = ("similarity", "affine", "projective", "polynomial2", "tps")


def _region(value: str | None) -> object:
    if value is None:
        return None
    from saropt.errors import InputError
    from saropt.io.windows import Window

    try:
        c, r, w, h = (int(v) for v in value.split(","))
    except ValueError:
        raise InputError(f"--region takes COL,ROW,WIDTH,HEIGHT in SAR pixels, got {value!r}") from None
    return Window(c, r, w, h)


@click.command("register", help=_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("sar", type=click.Path(dir_okay=False))
@click.argument("optical", type=click.Path(dir_okay=False))
@click.option(
    "-o", "--out", "out", required=True, type=click.Path(dir_okay=False), help="RESULT.json to write."
)
@click.option(
    "--model", default="affine", show_default=True, type=click.Choice(MODELS), help="Transform model."
)
@click.option(
    "--tiepoints-out",
    type=click.Path(dir_okay=False),
    help="Also write the inlier tie points: .csv (x_sar,y_sar,x_opt,y_opt,score) or QGIS .points.",
)
@click.option("--overview", type=click.Path(dir_okay=False), help="Overview PNG [RESULT_overview.png].")
@click.option(
    "--prior",
    default="geocoding",
    show_default=True,
    type=click.Choice(["geocoding", "none"]),
    help="Start from the georeferencing when both images have it, or search from scratch.",
)
@click.option("--region", help="SAR window COL,ROW,WIDTH,HEIGHT to register [whole image].")
@click.option("--nodata", type=float, help="Nodata value of both images [the files' own].")
@click.option("--min-reliability", type=click.FloatRange(0, 1), help="Reliability a tie point needs [0.5].")
@click.option("--seed", type=int, default=0, show_default=True, help="RANSAC seed.")
def register(
    sar: str,
    optical: str,
    out: str,
    model: str,
    tiepoints_out: str | None,
    overview: str | None,
    prior: str,
    region: str | None,
    nodata: float | None,
    min_reliability: float | None,
    seed: int,
) -> None:
    from dataclasses import replace

    from saropt.registration.auto.config import AutoConfig
    from saropt.registration.auto.report import register_files

    config = replace(AutoConfig(), seed=seed)
    if min_reliability is not None:
        config = replace(config, min_reliability=min_reliability)
    _reg, result = register_files(
        sar,
        optical,
        out,
        model=model,
        tiepoints_out=tiepoints_out,
        overview=overview,
        prior=prior,
        region=_region(region),  # type: ignore[arg-type]
        nodata=nodata,
        config=config,
    )
    summary = {
        k: result[k]
        for k in (
            "model",
            "optical_to_sar",
            "rmse_px",
            "loo_rmse_px",
            "n_tiepoints",
            "n_reliable",
            "n_inliers",
            "seconds",
        )
    }
    summary["result"] = out
    if "overview" in result:
        summary["overview"] = result["overview"]
    echo_json(summary)
