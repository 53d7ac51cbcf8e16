"""``saropt detect``: train, evaluate and run SAR ship detectors (OSM / OSD pretraining, WBF fusion)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import click

from saropt.cli.options import echo_json, progress_enabled, train_progress

logger = logging.getLogger(__name__)


@click.group("detect", context_settings={"help_option_names": ["-h", "--help"]})
def detect() -> None:
    """Train, evaluate and run SAR ship detectors.

    \b
      saropt detect train configs/detect/ssdd-cpu.yaml --out runs/random
      saropt detect train configs/detect/ssdd-cpu.yaml --init osm:runs/bnn --out runs/osm
      saropt detect eval -c osm=runs/osm -c osd=runs/osd --split test --fuse wbf --out eval/
      saropt detect predict SCENE.tif -c runs/osm -o ships.geojson --overview ships.png
    """


def _epoch_line(ev: dict[str, Any]) -> str:
    extra = f", val AP50 {ev['val_ap50']:.4f}" if "val_ap50" in ev else ""
    return f"epoch {ev['epoch']}/{ev['epochs']}: loss {ev['train_loss']:.4f}{extra} ({ev['seconds']:.0f} s)"


def _train_bar(ctx: click.Context) -> Any:
    return train_progress(ctx, _epoch_line)


@detect.command("train")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Run folder: last.pt, final.pt, config.yaml, history.json.")
@click.option("--data", "-d", help="Dataset root (overrides 'data').")
@click.option("--init", help="random | osm:MATCHING_RUN | osd:DETECTOR_RUN | weight file (overrides 'init').")
@click.option("--epochs", type=int, help="Override 'epochs'.")
@click.option("--device", help="auto, cpu or cuda[:N] (overrides 'device').")
@click.option("--max-minutes", type=float, help="Stop after this many minutes (resumable).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override any config key, model keys as model.KEY=VALUE (repeatable).")
@click.option("--resume/--no-resume", default=True, show_default=True, help="Continue the run in --out if any.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_context
def train_cmd(ctx: click.Context, config: Path, out: Path, data: str | None, init: str | None, epochs: int | None,
              device: str | None, max_minutes: float | None, sets: tuple[str, ...], resume: bool, as_json: bool
              ) -> None:
    """Train a detector from CONFIG.yaml (see configs/detect/)."""
    from saropt.detection.config import DetectTrainConfig
    from saropt.detection.train import train_detector

    cfg = DetectTrainConfig.from_yaml(config, sets, data=data, init=init, epochs=epochs, device=device,
                                      max_minutes=max_minutes)
    with _train_bar(ctx) as bar:
        res = train_detector(cfg, out, resume=resume, on_event=bar)
    summary = {"run_dir": str(res.run_dir), "completed": res.completed, "epochs": res.epochs, "steps": res.steps,
               "checkpoint": str(res.checkpoint), "init": res.init,
               "final_loss": res.history[-1]["train_loss"] if res.history else None}
    if as_json:
        echo_json(summary)
    else:
        state = "finished" if res.completed else "stopped (run again to resume)"
        click.echo(f"{state}: {res.epochs} epochs, {res.steps} steps -> {res.checkpoint}")


def _parse_checkpoints(items: tuple[str, ...]) -> dict[str, str]:
    from saropt.errors import InputError

    out: dict[str, str] = {}
    for it in items:
        name, sep, path = it.partition("=")
        if not sep:
            path, name = it, Path(it.rstrip("/")).name
            name = Path(name).stem if name.endswith(".pt") else name
        if not name or not path:
            raise InputError(f"checkpoint {it!r} must be PATH or NAME=PATH")
        if name in out:
            raise InputError(f"checkpoint name {name!r} given twice; name them NAME=PATH")
        out[name] = path
    return out


@detect.command("eval")
@click.option("--checkpoint", "-c", "checkpoints", multiple=True, required=True, metavar="[NAME=]PATH",
              help="Detector run folder or .pt (repeatable; two or more are also fused).")
@click.option("--data", "-d", help="Dataset root (default: the first checkpoint's training data).")
@click.option("--format", "fmt", help="voc, coco, yolo or dota (default: the first checkpoint's).")
@click.option("--split", default="test", show_default=True, help="Split to evaluate.")
@click.option("--fuse", "fusions", multiple=True, default=("wbf",), show_default=True,
              type=click.Choice(["wbf", "nms", "soft_nms"]), help="Fusion of the detectors' outputs (repeatable).")
@click.option("--weights", help="Comma-separated fusion weights, one per checkpoint.")
@click.option("--iou-thr", type=float, default=0.55, show_default=True, help="Fusion IoU threshold.")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path),
              help="Write comparison.md/.json, pr_curves.png and predictions here.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")
@click.option("--max-images", type=int, default=0, help="Evaluate a seeded subset of this many images.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.pass_context
def eval_cmd(ctx: click.Context, checkpoints: tuple[str, ...], data: str | None, fmt: str | None, split: str,
             fusions: tuple[str, ...], weights: str | None, iou_thr: float, out: Path | None, device: str,
             max_images: int, as_json: bool) -> None:
    """Evaluate detectors (VOC AP@0.5, COCO AP) and their fusion on one split."""
    from saropt.detection.evaluate import evaluate_checkpoints
    from saropt.errors import InputError

    w = None
    if weights:
        try:
            w = [float(v) for v in weights.split(",")]
        except ValueError as exc:
            raise InputError(f"--weights must be comma-separated numbers, got {weights!r}") from exc
    bars: dict[str, Any] = {}

    def progress(name: str, done: int, total: int) -> None:
        from tqdm.auto import tqdm

        if name not in bars:
            bars[name] = tqdm(total=total, desc=name, unit="img", leave=False)
        bars[name].n = done
        bars[name].refresh()

    try:
        table = evaluate_checkpoints(_parse_checkpoints(checkpoints), data=data, fmt=fmt, split=split,
                                     fusions=fusions, weights=w, iou_thr=iou_thr, out=out, device=device,
                                     max_images=max_images, on_progress=progress if progress_enabled(ctx) else None)
    finally:
        for b in bars.values():
            b.close()
    if as_json:
        click.echo(json.dumps(table.rows, indent=2, default=float))
    else:
        click.echo(table.markdown, nl=False)
        if out is not None:
            click.echo(f"written: {out}/comparison.md, comparison.json, pr_curves.png")


@detect.command("predict")
@click.argument("scene", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--checkpoint", "-c", required=True, help="Detector run folder or .pt.")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output GeoJSON (e.g. ships.geojson).")
@click.option("--overview", type=click.Path(dir_okay=False, path_type=Path), help="Also write an overview PNG.")
@click.option("--tile", type=int, help="Tile side in pixels [default: the detector's min_size, no rescaling].")
@click.option("--overlap", type=float, default=0.25, show_default=True, help="Tile overlap fraction.")
@click.option("--merge", type=click.Choice(["nms", "wbf", "soft_nms"]), default="nms", show_default=True,
              help="Cross-tile merging.")
@click.option("--iou-thr", type=float, default=0.5, show_default=True, help="Merge IoU threshold.")
@click.option("--score-thresh", type=float, default=0.3, show_default=True, help="Minimum ship score.")
@click.option("--band", type=int, help="1-based band to read (default: saropt's SAR band choice).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@click.pass_context
def predict_cmd(ctx: click.Context, scene: Path, checkpoint: str, out: Path, overview: Path | None, tile: int | None,
                overlap: float, merge: str, iou_thr: float, score_thresh: float, band: int | None, device: str,
                as_json: bool) -> None:
    """Detect ships over a whole SAR SCENE (tiled) and write GeoJSON."""
    from saropt.detection.checkpoint import detector_from_checkpoint
    from saropt.detection.predict import predict_scene, write_geojson, write_overview
    from saropt.detection.train import resolve_device
    from saropt.errors import RasterReadError

    if not scene.is_file():
        raise RasterReadError(f"scene not found: {scene}")
    model, ckpt = detector_from_checkpoint(checkpoint)
    dev = resolve_device(device)
    model.to(dev)
    bar: list[Any] = [None]

    def progress(done: int, total: int) -> None:
        from tqdm.auto import tqdm

        if bar[0] is None:
            bar[0] = tqdm(total=total, desc="tiles", unit="tile", leave=False)
        bar[0].n = done
        bar[0].refresh()

    try:
        pred = predict_scene(model, scene, tile=tile, overlap=overlap, merge=merge, iou_thr=iou_thr,
                             score_thresh=score_thresh, band=band, device=dev,
                             on_progress=progress if progress_enabled(ctx) else None)
    finally:
        if bar[0] is not None:
            bar[0].close()
    info = {"checkpoint": ckpt["path"], "arch": ckpt["config"]["model"]["arch"],
            "backbone": ckpt["config"]["model"]["backbone"], "init": ckpt.get("init", {}).get("init", "")}
    write_geojson(pred, out, info)
    if overview is not None:
        write_overview(pred, overview)
    summary = {"scene": str(scene), "ships": len(pred.detections), "tiles": pred.tiles, "geojson": str(out),
               "overview": str(overview) if overview else None, "georeferenced": pred.crs is not None}
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"{len(pred.detections)} ships in {pred.tiles} tiles -> {out}"
                   + (f", {overview}" if overview else ""))


@detect.command("info")
@click.argument("root", type=click.Path(path_type=Path))
@click.option("--format", "fmt", default="voc", show_default=True, type=click.Choice(["voc", "coco", "yolo", "dota"]))
@click.option("--split", default="", help="Split name (empty: everything).")
def info_cmd(root: Path, fmt: str, split: str) -> None:
    """Summarise a ship dataset: images, boxes, difficult boxes, box sizes."""
    from saropt.detection.datasets import read_records, summarise

    echo_json(summarise(read_records(fmt, root, split or None)))
