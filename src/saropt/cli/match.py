"""``saropt match``: train and evaluate SAR-optical matching models (Bridge Neural Network, baselines)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from saropt.cli.options import progress_enabled, train_progress

logger = logging.getLogger(__name__)

#: training-free measures (saropt.matching.baselines.BASELINES, not imported: the CLI starts without numpy)
MEASURES = ("ncc", "mi", "cfog")


@click.group("match", context_settings={"help_option_names": ["-h", "--help"]})
def match() -> None:
    """Train and evaluate SAR-optical patch matching models.

    \b
      saropt match train --config configs/match/bnn-cpu.yaml --data DATASET --out RUN_DIR
      saropt match eval --checkpoint RUN_DIR --data DATASET --split test --json METRICS.json --baselines
    """


def _epoch_line(ev: dict[str, Any]) -> str:
    auc = ev.get("val_roc_auc")
    return (
        f"epoch {ev['epoch']}/{ev['epochs']}: loss {ev['train_loss']:.4f}"
        + (f", val AUC {auc:.3f}, val acc {ev['val_accuracy']:.3f}" if auc is not None else "")
        + f" ({ev['seconds']:.0f} s, {ev['pairs_per_s']:.1f} pairs/s)"
    )


def _train_bar(ctx: click.Context) -> Any:
    return train_progress(ctx, _epoch_line)


@match.command("train")
@click.argument(
    "config_arg", metavar="[CONFIG.yaml]", required=False, type=click.Path(dir_okay=False, path_type=Path)
)
@click.option(
    "--config",
    "-c",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Training configuration YAML (e.g. configs/match/bnn-cpu.yaml).",
)
@click.option("--data", "-d", type=click.Path(path_type=Path), help="Dataset folder (overrides 'data').")
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Run folder: checkpoints, config.yaml, history.json, learning_curve.png.",
)
@click.option("--format", "data_format", help="Dataset reader (overrides 'data_format') [saropt].")
@click.option("--epochs", type=int, help="Override 'epochs'.")
@click.option("--device", help="auto, cpu or cuda[:N] (overrides 'device').")
@click.option("--max-minutes", type=float, help="Stop after this many minutes (resumable).")
@click.option(
    "--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override any config key (repeatable)."
)
@click.option(
    "--resume/--no-resume", default=True, show_default=True, help="Continue the run in --out if it holds one."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_context
def train_cmd(
    ctx: click.Context,
    config_arg: Path | None,
    config: Path | None,
    data: Path | None,
    out: Path,
    data_format: str | None,
    epochs: int | None,
    device: str | None,
    max_minutes: float | None,
    sets: tuple[str, ...],
    resume: bool,
    as_json: bool,
) -> None:
    """Train a matching model: BNN, pseudo-siamese or dense (seeded, resumable, GPU when present)."""
    from saropt.errors import ConfigError
    from saropt.matching.config import load_config, parse_override
    from saropt.matching.train import train

    if config_arg is not None and config is not None and config_arg != config:
        raise ConfigError("give the config once: either CONFIG.yaml or --config CONFIG.yaml")
    overrides: dict[str, Any] = dict(parse_override(s) for s in sets)
    for key, value in (
        ("data", str(data) if data else None),
        ("data_format", data_format),
        ("epochs", epochs),
        ("device", device),
        ("max_minutes", max_minutes),
    ):
        if value is not None:
            overrides[key] = value
    cfg = load_config(config or config_arg, overrides)
    with _train_bar(ctx) as progress:
        result = train(cfg, out, resume=resume, progress=progress)
    summary = {
        "run_dir": str(result.run_dir),
        "epochs_done": result.epochs_done,
        "finished": result.finished,
        "best": result.best,
        "checkpoint": str(result.checkpoint),
    }
    if as_json:
        from saropt.cli.options import echo_json

        echo_json(summary)
        return
    state = "finished" if result.finished else "stopped (resumable: run the same command again)"
    click.echo(f"{state}: {result.epochs_done}/{cfg.epochs} epochs in {result.run_dir}")
    if result.best:
        b = result.best
        line = (
            f"best epoch {b['epoch']}: val ROC-AUC {b['val_roc_auc']:.3f}, val accuracy "
            f"{b['val_accuracy']:.3f} (calibrated {b['val_accuracy_calibrated']:.3f})"
        )
        if "val_loc_rmse" in b:
            line += (
                f", localisation within 1/3 px {b['val_cmr_1px']:.3f}/{b['val_cmr_3px']:.3f}, "
                f"RMSE {b['val_loc_rmse']:.2f} px"
            )
        click.echo(line)
    click.echo(f"checkpoint: {result.checkpoint}")


@match.command("eval")
@click.option(
    "--checkpoint",
    "-k",
    "checkpoints",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Checkpoint file or run folder (repeatable: the first is the primary method).",
)
@click.option("--data", "-d", type=click.Path(path_type=Path), required=True, help="Dataset folder.")
@click.option("--format", "data_format", help="Dataset reader [the checkpoint's, else saropt].")
@click.option(
    "--split", default="test", show_default=True, help="Split to evaluate: test, val, train or all."
)
@click.option(
    "--calibration-split",
    default="val",
    show_default=True,
    help="Split whose pairs calibrate thresholds ('none': the evaluation pairs).",
)
@click.option(
    "--baselines", "with_baselines", is_flag=True, help="Add the training-free NCC, MI and CFOG measures."
)
@click.option(
    "--baseline",
    "baseline_names",
    multiple=True,
    type=click.Choice(MEASURES),
    help="Add one training-free measure (repeatable).",
)
@click.option(
    "--protocol",
    "protocols",
    multiple=True,
    type=click.Choice(["balanced", "hard", "localisation", "retrieval"]),
    help="Run only these protocols (repeatable) [all].",
)
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write METRICS.json."
)
@click.option(
    "--markdown", "md_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the table."
)
@click.option(
    "--png",
    "png_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Draw each method's median localisation error per scene (needs the localisation protocol).",
)
@click.option(
    "--crop",
    type=int,
    help="Native crop of the training-free baselines' view [the first checkpoint's view, else whole patch].",
)
@click.option(
    "--size",
    type=int,
    help="Resize of the training-free baselines' view [the first checkpoint's view, else no resize].",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of negatives, shifts and candidates."
)
@click.option(
    "--max-patches",
    type=int,
    default=0,
    show_default=True,
    help="Evaluate at most this many patches (whole scenes) [all].",
)
@click.option("--search-radius", type=int, default=8, show_default=True, help="Localisation radius (px).")
@click.option(
    "--template-side", type=int, default=0, show_default=True,
    help="Localisation template side in native px (0 = the first method's view crop).",
)
@click.option(
    "--templates", type=int, default=50, show_default=True,
    help="Localisation templates (0 = all; slow on CPU).",
)
@click.option(
    "--candidates",
    type=int,
    default=100,
    show_default=True,
    help="Retrieval candidates per query (capped at the number of patches: a large number ranks among all).",
)
@click.option(
    "--bootstrap", type=int, default=1000, show_default=True,
    help="Resamples of the paired bootstrap: 95% intervals and the first method minus each other (0 = none).",
)
@click.option(
    "--refine", "refine", type=click.Choice(MEASURES), default=None,
    help="Also localise with each checkpoint refined by this measure: its best shift within --refine-radius "
    "px of the model's (reported as NAME>MEASURE, localisation's primary).",
)
@click.option(
    "--refine-radius", type=int, default=1, show_default=True,
    help="Half-side (px) of the square around the model's peak that --refine searches.",
)
@click.option(
    "--subpixel", is_flag=True,
    help="Refine each localisation peak to sub-pixel (a parabola through its neighbours in x and in y).",
)
@click.option(
    "--ensemble", is_flag=True,
    help="Score all --checkpoint models as one method, the mean of their scores (one model kind and view).",
)
@click.option(
    "--fuse", is_flag=True,
    help="Score all --checkpoint models (any kinds: BNN with dense matcher) as one method, the mean of their "
    "scores standardised on the calibration split.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")
@click.option(
    "--tta", is_flag=True,
    help="Score trained models under the 8 flips/rotations and average (8x inference).",
)
@click.pass_context
def eval_cmd(
    ctx: click.Context,
    checkpoints: tuple[Path, ...],
    data: Path,
    data_format: str | None,
    split: str,
    calibration_split: str,
    with_baselines: bool,
    baseline_names: tuple[str, ...],
    protocols: tuple[str, ...],
    json_path: Path | None,
    md_path: Path | None,
    png_path: Path | None,
    crop: int | None,
    size: int | None,
    seed: int,
    max_patches: int,
    search_radius: int,
    template_side: int,
    templates: int,
    candidates: int,
    bootstrap: int,
    refine: str | None,
    refine_radius: int,
    subpixel: bool,
    ensemble: bool,
    fuse: bool,
    device: str,
    tta: bool,
) -> None:
    """Evaluate checkpoints and baselines under every protocol (balanced, hard, localisation, retrieval)."""
    from saropt.errors import ConfigError
    from saropt.matching.baselines import BASELINES
    from saropt.matching.evaluate import evaluate
    from saropt.matching.protocols import PROTOCOLS, ProtocolSettings
    from saropt.matching.views import ViewSpec

    names = list(BASELINES) if with_baselines else list(dict.fromkeys(baseline_names))
    if not checkpoints and not names:
        raise ConfigError("nothing to evaluate: give --checkpoint RUN_DIR and/or --baselines")
    if png_path and protocols and "localisation" not in protocols:
        raise ConfigError("--png draws localisation errors: add --protocol localisation")
    if (refine or subpixel) and protocols and "localisation" not in protocols:
        raise ConfigError("--refine and --subpixel act on localisation: add --protocol localisation")
    if refine_radius != 1 and not refine:
        raise ConfigError("--refine-radius needs --refine MEASURE")
    view = None
    if crop is not None or size is not None:
        view = ViewSpec(crop or 0, size or 0)
    settings = ProtocolSettings(
        seed=seed,
        max_patches=max_patches,
        search_radius=search_radius,
        template_side=template_side,
        max_templates=templates,
        retrieval_candidates=candidates,
        bootstrap=bootstrap,
        refine=refine or "",
        refine_radius=refine_radius,
        subpixel=subpixel,
    )
    with _eval_bar(ctx) as progress:
        report = evaluate(
            data,
            checkpoints=list(checkpoints),
            split=split,
            baselines=names,
            protocols=list(protocols) or list(PROTOCOLS),
            settings=settings,
            calibration_split=None if calibration_split.lower() == "none" else calibration_split,
            view=view,
            data_format=data_format,
            device=device,
            progress=progress,
            tta=tta,
            ensemble=ensemble,
            fuse=fuse,
        )
    if json_path:
        report.write_json(json_path)
    if md_path:
        report.write_markdown(md_path)
    if png_path:
        from saropt.matching.curves import plot_scene_offsets

        plot_scene_offsets(
            report.results["localisation"], png_path, report.meta.get("localisation_shared_scene_offsets")
        )
    click.echo(report.to_markdown(), nl=False)
    if json_path:
        click.echo(f"wrote {json_path}")


@contextmanager
def _eval_bar(ctx: click.Context) -> Iterator[Callable[[str, int, int], None] | None]:
    if not progress_enabled(ctx):
        yield None
        return
    from tqdm.auto import tqdm

    bars: dict[str, Any] = {}

    def update(task: str, done: int, total: int) -> None:
        bar = bars.get(task)
        if bar is None:
            for b in bars.values():
                b.close()
            bars.clear()
            bar = bars[task] = tqdm(total=total, desc=task, leave=False)
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        for b in bars.values():
            b.close()
