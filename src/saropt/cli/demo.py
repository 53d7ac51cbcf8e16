"""``saropt demo``: build a dataset from a synthetic scene pair with a known warp and report the error."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click


@click.command("demo", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", "-o", type=click.Path(path_type=Path), help="Demo folder [a new temporary folder].")
@click.option(
    "--size", type=int, default=1536, show_default=True, help="Side of the synthetic SAR scene (px)."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the synthetic scene.")
@click.option("--workers", "-j", type=int, help="Worker processes [one per CPU core].")
@click.pass_context
def demo(ctx: click.Context, out: Path | None, size: int, seed: int, workers: int | None) -> None:
    """Generate a synthetic SAR/optical pair with a known warp (OUT/scene) and build a dataset from it
    (OUT/dataset) with its noisy tie points, an affine RANSAC fit and the default filters.

    Prints the dataset summary, the registration error against the true warp (RMSE over a grid of SAR pixels)
    and the overview image. Running it again into the same folder reuses the scene and the dataset.
    """
    from saropt.cli.build import _progress_bar
    from saropt.dataset.demo import run_demo
    from saropt.dataset.summary import format_summary

    root = out if out is not None else Path(tempfile.mkdtemp(prefix="saropt-demo-"))
    with _progress_bar(ctx) as progress:
        res = run_demo(root, size=size, seed=seed, workers=workers, progress=progress)
    b = res.build
    summary = dict(b.summary)
    summary["root"] = str(b.root)
    if b.status == "complete":
        click.echo(f"{b.root} already holds the demo dataset: nothing to rebuild.")
    elif b.timings.get("total"):
        t = b.timings["total"]
        click.echo(f"{b.status} in {t:.1f} s ({summary['pairs_total'] / t:.0f} pairs/s)")
    click.echo(format_summary(summary))
    click.echo(
        f"truth         fitted affine vs the true optical->SAR warp: RMSE {res.truth_rmse_px:.3f} px, "
        f"max {res.truth_max_px:.3f} px over a 32x32 grid of SAR pixels"
    )
    click.echo(f"scene         {res.scene_dir}")
    if res.overview is not None:
        click.echo(f"look at       {res.overview}")
