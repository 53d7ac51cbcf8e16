"""``saropt build``: build a registered SAR-optical patch-pair dataset from a configuration or from flags."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from saropt.cli.options import progress_enabled

logger = logging.getLogger(__name__)

MODELS = ("identity", "similarity", "affine", "projective", "polynomial2", "tps")

_HELP = """Build a registered SAR-optical patch-pair dataset (QXS-SAROPT layout plus index.parquet).

\b
Two forms:
  saropt build CONFIG.yaml [--out DIR] [--set key.sub=value ...]
  saropt build --sar SAR --optical OPT --out DIR [--tiepoints FILE] [--model affine]
               [--patch-size 256] [--stride N | --overlap F] [--aligned]

--sar/--optical may be two folders of images paired by file name (each pair a scene). Without tie points a
georeferenced pair is registered by its geocoding; --aligned says the images share one pixel grid (identity).
Flags override the configuration file; --set reaches any key (e.g. --set quality.texture_min=2.5).

Grid: --overlap F gives stride = round(patch_size * (1 - F)). QXS-SAROPT's "stride 52 for 20% overlap" is
inconsistent: at 256 px, stride 52 is 79.7% overlap and 20% overlap is stride 205 (the default). saropt accepts
either and reports the overlap that results.

An interrupted build resumes when run again with the same configuration; the dataset is complete when
index.parquet exists.
"""


@click.command("build", help=_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--sar", "sar", type=click.Path(path_type=Path), help="SAR image, or a folder of them.")
@click.option(
    "--optical", "optical", type=click.Path(path_type=Path), help="Optical image, or a folder of them."
)
@click.option("--out", "-o", "out", type=click.Path(path_type=Path), help="Output folder (new or empty).")
@click.option(
    "--tiepoints",
    help="Tie-point file (CSV x_sar,y_sar,x_opt,y_opt; QGIS .points; 4-column check points), or gcps / "
    "geocoding / identity / auto; a folder of files named like the pairs with folder inputs.",
)
@click.option(
    "--tiepoints-format",
    type=click.Choice(["csv", "qgis", "checkpoints"]),
    help="Tie-point file format [detected].",
)
@click.option(
    "--tiepoints-origin",
    type=click.IntRange(0, 1),
    help="Pixel origin of a checkpoints file (1: MATLAB) [0].",
)
@click.option("--model", type=click.Choice(MODELS), help="Transform model fitted to the tie points [affine].")
@click.option("--patch-size", type=int, help="Patch side in pixels [256].")
@click.option("--stride", type=int, help="Stride in pixels (excludes --overlap) [205 at 256 px].")
@click.option(
    "--overlap", type=float, help="Overlap fraction between neighbours, e.g. 0.2 (excludes --stride)."
)
@click.option("--aligned", is_flag=True, help="The images share one pixel grid: identity registration.")
@click.option(
    "--workers", "-j", type=int, help="Worker processes [one per CPU core]; outputs do not depend on it."
)
@click.option("--geotiff", is_flag=True, help="Also write float32 GeoTIFF patches with georeferencing.")
@click.option("--split-method", type=click.Choice(["block", "scene", "random"]), help="Split method [block].")
@click.option(
    "--split-from",
    type=click.Path(path_type=Path),
    help="Give every scene the split it has in this saropt dataset (a scene split), e.g. to rebuild the same "
    "scenes with another registration and compare.",
)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override any configuration key.")
@click.option("--overwrite", is_flag=True, help="Replace a saropt dataset built with another configuration.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.pass_context
def build(
    ctx: click.Context,
    config: Path | None,
    sar: Path | None,
    optical: Path | None,
    out: Path | None,
    tiepoints: str | None,
    tiepoints_format: str | None,
    tiepoints_origin: int | None,
    model: str | None,
    patch_size: int | None,
    stride: int | None,
    overlap: float | None,
    aligned: bool,
    workers: int | None,
    geotiff: bool,
    split_method: str | None,
    split_from: Path | None,
    sets: tuple[str, ...],
    overwrite: bool,
    as_json: bool,
) -> None:
    from saropt.dataset.build import build_dataset
    from saropt.dataset.summary import format_summary

    cfg = make_config(
        config=config,
        sar=sar,
        optical=optical,
        out=out,
        tiepoints=tiepoints,
        tiepoints_format=tiepoints_format,
        tiepoints_origin=tiepoints_origin,
        model=model,
        patch_size=patch_size,
        stride=stride,
        overlap=overlap,
        aligned=aligned,
        workers=workers,
        geotiff=geotiff,
        split_method=split_method,
        split_from=split_from,
        sets=sets,
    )
    with _progress_bar(ctx) as progress:
        result = build_dataset(cfg, cfg.out, overwrite=overwrite, progress=progress)
    summary = dict(result.summary)
    summary["root"] = str(result.root)
    if as_json:
        from saropt.cli.options import echo_json

        echo_json(summary)
        return
    if result.status == "complete":
        click.echo(f"{result.root} already holds this dataset (same configuration): nothing to do.")
    t = result.timings.get("total", 0.0)
    if result.status != "complete" and t > 0:
        click.echo(
            f"{result.status} in {t:.1f} s: {result.units_run} of {result.units_total} units run, "
            f"{summary['pairs_total'] / t:.0f} pairs/s"
        )
    click.echo(format_summary(summary))


def make_config(
    *,
    config: Path | None = None,
    sar: Path | None = None,
    optical: Path | None = None,
    out: Path | None = None,
    tiepoints: str | None = None,
    tiepoints_format: str | None = None,
    tiepoints_origin: int | None = None,
    model: str | None = None,
    patch_size: int | None = None,
    stride: int | None = None,
    overlap: float | None = None,
    aligned: bool = False,
    workers: int | None = None,
    geotiff: bool = False,
    split_method: str | None = None,
    split_from: Path | None = None,
    sets: tuple[str, ...] = (),
    need_out: bool = True,
) -> Any:
    """The :class:`BuildConfig` of a ``saropt build`` command line (file, then flags, then ``--set``);
    ``need_out=False`` for commands that write no dataset (``saropt calibrate``)."""
    from saropt.dataset.config import apply_override, config_from_dict, read_yaml, scenes_from_paths
    from saropt.errors import ConfigError

    raw: dict[str, Any] = {}
    base_dir = Path.cwd()
    if config is not None:
        if not config.is_file():
            raise ConfigError(f"configuration file not found: {config}")
        raw = read_yaml(config)
        base_dir = config.resolve().parent
    if (sar is None) != (optical is None):
        raise ConfigError("give both --sar and --optical (files, or folders paired by file name)")
    if sar is not None and optical is not None:
        if raw.get("scenes"):
            raise ConfigError(f"{config} already lists scenes; drop --sar/--optical or the scenes: section")
        raw["scenes"] = scenes_from_paths(sar, optical, tiepoints)
    elif tiepoints is not None:
        scenes = raw.get("scenes") or []
        if len(scenes) != 1:
            raise ConfigError(
                "--tiepoints applies to one scene pair; set scenes.<i>.tiepoints with --set instead"
            )
        scenes[0]["tiepoints"] = (
            tiepoints
            if tiepoints in ("gcps", "geocoding", "identity", "auto")
            else str(Path(tiepoints).absolute())
        )
    if config is None and sar is None:
        raise ConfigError("no scenes: give CONFIG.yaml or --sar SAR --optical OPT (see saropt build --help)")
    if aligned:
        if tiepoints is not None:
            raise ConfigError(
                "--aligned and --tiepoints exclude each other (aligned pairs need no tie points)"
            )
        for s in raw.get("scenes") or []:
            if isinstance(s, dict):
                s["tiepoints"] = "identity"
    for key, value in (("tiepoints_format", tiepoints_format), ("tiepoints_origin", tiepoints_origin)):
        if value is not None:
            for s in raw.get("scenes") or []:
                if isinstance(s, dict):
                    s[key] = value
    if out is not None:
        raw["out"] = str(out.absolute())
    if model is not None:
        raw["model"] = model
    if patch_size is not None:
        raw["patch_size"] = patch_size
    if stride is not None and overlap is not None:
        raise ConfigError("give either --stride or --overlap, not both")
    if stride is not None:
        raw["stride"], raw["overlap"] = stride, None
    if overlap is not None:
        raw["overlap"], raw["stride"] = overlap, None
    if workers is not None:
        raw["workers"] = workers
    if geotiff:
        raw.setdefault("outputs", {})
        if isinstance(raw["outputs"], dict):
            raw["outputs"]["geotiff"] = True
    if split_method is not None:
        if isinstance(raw.get("split"), dict):
            raw["split"]["method"] = split_method
        else:
            raw["split"] = {"method": split_method}
    if split_from is not None:
        if split_method not in (None, "scene"):
            raise ConfigError("--split-from gives whole scenes their split: it needs --split-method scene")
        raw["split"] = {**(raw.get("split") if isinstance(raw.get("split"), dict) else {}), "method": "scene"}
        raw["split"]["scenes"] = scene_splits_of(split_from)
    for item in sets:
        apply_override(raw, item)
    cfg = config_from_dict(raw, base_dir=base_dir)
    if cfg.out is None and need_out:
        raise ConfigError("no output folder: give --out DIR (or out: in the configuration)")
    return cfg


def scene_splits_of(root: Path) -> dict[str, str]:
    """``{scene id: split}`` of a saropt dataset whose kept patches were split by scene.

    Raises:
        DatasetNotFoundError, CorruptFileError: no readable ``index.parquet``.
        InputError: no split patches, or a scene in several splits.
    """
    from saropt.dataset.index import read_index
    from saropt.errors import InputError

    df = read_index(root)
    if "split" not in df.columns:
        raise InputError(f"--split-from: {root} has no split column")
    df = df[df["split"].isin(["train", "val", "test"])]
    if df.empty:
        raise InputError(f"--split-from: {root} has no patch in train, val or test")
    per_scene = df.groupby(df["scene_id"].astype(str))["split"].unique()
    mixed = [k for k, v in per_scene.items() if len(v) > 1]
    if mixed:
        raise InputError(
            f"--split-from: scene {mixed[0]} of {root} lies in several splits (a block or random split); "
            "only a scene split can be carried over"
        )
    return {str(k): str(v[0]) for k, v in per_scene.items()}


class _progress_bar:
    """A tqdm bar (over build units, or ``unit``) on an interactive terminal, else no callback."""

    def __init__(
        self, ctx: click.Context, desc: str = "build", unit: str = "unit", enabled: bool = True
    ) -> None:
        self.enabled = enabled and progress_enabled(ctx)
        self.desc, self.unit = desc, unit
        self.bar: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return None
        from tqdm import tqdm

        def progress(done: int, total: int) -> None:
            if self.bar is None:
                self.bar = tqdm(total=total, unit=self.unit, desc=self.desc, dynamic_ncols=True, leave=False)
            self.bar.n = done
            self.bar.refresh()

        return progress

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
