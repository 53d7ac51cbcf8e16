"""``saropt data``: validate, describe, split and pack SAR-optical datasets."""

from __future__ import annotations

from typing import Any

import click

from saropt.cli.options import echo_json, progress_enabled

FORMATS = ("qxs-saropt", "sen1-2", "sen12ms", "osdataset", "saropt", "geotiff", "packed")


def _parse_options(options: tuple[str, ...]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for opt in options:
        key, sep, value = opt.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {opt!r}", param_hint="-O/--option")
        out[key.strip().replace("-", "_")] = yaml.safe_load(value)
    return out


def _progress(label: str) -> Any:
    if not progress_enabled():
        return None, None
    from tqdm import tqdm

    bar = tqdm(desc=label, unit="pair", leave=False)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        if done == total or done % 64 == 0:
            bar.refresh()

    return bar, update


_format_arg = click.argument("fmt", metavar="FORMAT", type=click.Choice(FORMATS, case_sensitive=False))
_root_arg = click.argument("root", type=click.Path(path_type=str))
_option_opt = click.option(
    "-O",
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Reader argument, e.g. -O size=256 -O seasons=[spring] (YAML values).",
)


@click.group()
def data() -> None:
    """Validate, describe, split and pack SAR-optical datasets (QXS-SAROPT, SEN1-2, SEN12MS, OSdataset,
    saropt)."""


@data.command()
@_format_arg
@_root_arg
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--skip-corrupt", is_flag=True, help="List undecodable pairs instead of stopping at the first.")
@click.option("--limit", type=click.IntRange(min=0), default=None, help="Decode only the first N pairs.")
@_option_opt
def info(
    fmt: str, root: str, as_json: bool, skip_corrupt: bool, limit: int | None, options: tuple[str, ...]
) -> None:
    """Check that every pair of a dataset is present and readable, and describe it.

    Prints pairs per split, bands, dtypes, shapes and value ranges. Exits non-zero when a file is missing or
    corrupt (with --skip-corrupt: after listing every corrupt pair).
    """
    from saropt.data.info import dataset_info

    bar, update = _progress("checking")
    try:
        res = dataset_info(
            fmt, root, skip_corrupt=skip_corrupt, limit=limit, progress=update, **_parse_options(options)
        )
    finally:
        if bar is not None:
            bar.close()
    if as_json:
        echo_json(res.to_dict())
    else:
        click.echo(
            f"{res.format} at {res.root}: {res.pairs} pairs ({res.checked} decoded in {res.seconds:.1f} s)"
        )
        click.echo("splits: " + ", ".join(f"{k} {v}" for k, v in res.splits.items()))
        for key, st in res.arrays.items():
            rng = ", ".join(
                f"{b or i}: {lo:g}..{hi:g}"
                for i, (b, lo, hi) in enumerate(zip(st.bands or [""] * len(st.min), st.min, st.max))
            )
            shapes = ", ".join(f"{s} ({n})" for s, n in st.shapes.items())
            nan = f", NaN {st.nan_fraction:.2%}" if st.nan_fraction else ""
            click.echo(f"{key}: {'/'.join(st.dtype)} {shapes}; {rng}{nan}")
        for c in res.corrupt:
            click.echo(f"corrupt: {c['id']}: {c['error']}", err=True)
    if res.corrupt:
        raise SystemExit(1)


@data.command()
@_format_arg
@_root_arg
@click.option(
    "-o", "--out", "out", required=True, type=click.Path(path_type=str), help="Shard folder to create."
)
@click.option("--split", default=None, help="Pack one split only (default: all).")
@click.option(
    "--shard-size", type=click.IntRange(min=1), default=1024, show_default=True, help="Pairs per shard."
)
@click.option("--overwrite", is_flag=True, help="Replace an existing shard folder written by saropt.")
@click.option("--skip-corrupt", is_flag=True, help="Leave out undecodable pairs (logged) instead of failing.")
@_option_opt
def pack(
    fmt: str,
    root: str,
    out: str,
    split: str | None,
    shard_size: int,
    overwrite: bool,
    skip_corrupt: bool,
    options: tuple[str, ...],
) -> None:
    """Decode a dataset once into packed shards for fast training (read with saropt.data.PackedStream)."""
    from saropt.data.packed import pack as do_pack
    from saropt.data.registry import get_dataset, resolve_name

    kwargs = _parse_options(options)
    if resolve_name(fmt) != "geotiff":
        kwargs.setdefault("split", split)
    ds = get_dataset(fmt, root, **kwargs)
    bar, update = _progress("packing")
    try:
        path = do_pack(
            ds, out, shard_size=shard_size, overwrite=overwrite, skip_corrupt=skip_corrupt, progress=update
        )
    finally:
        if bar is not None:
            bar.close()
    from saropt.data.packed import read_manifest

    man = read_manifest(path)
    click.echo(f"packed {man['count']} pairs into {len(man['shards'])} shards: {path}")


@data.command()
@_format_arg
@_root_arg
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=str), help="Split file (JSON).")
@click.option(
    "--method",
    type=click.Choice(["official", "scene", "block", "numbers", "random"]),
    default="scene",
    show_default=True,
    help="How to group pairs (see saropt.data.splits).",
)
@click.option("--fractions", default="train=0.8,val=0.1,test=0.1", show_default=True, help="Split fractions.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--block-size", type=float, default=None, help="Block side for --method block.")
@click.option(
    "--number-block", type=int, default=500, show_default=True, help="File numbers per group (numbers)."
)
@_option_opt
def split(
    fmt: str,
    root: str,
    out: str,
    method: str,
    fractions: str,
    seed: int,
    block_size: float | None,
    number_block: int,
    options: tuple[str, ...],
) -> None:
    """Freeze a leakage-aware train/val/test split of a dataset into a JSON file with a SHA-256."""
    from saropt.data.registry import get_dataset, resolve_name
    from saropt.data.splits import make_split

    fr: dict[str, float] = {}
    for part in fractions.split(","):
        k, sep, v = part.partition("=")
        try:
            fr[k.strip()] = float(v)
        except ValueError:
            raise click.BadParameter(
                f"expected name=fraction, got {part!r}", param_hint="--fractions"
            ) from None
    kwargs = _parse_options(options)
    if resolve_name(fmt) not in ("geotiff",):
        kwargs.setdefault("split", None)
    ds = get_dataset(fmt, root, **kwargs)
    sf = make_split(ds, method, fr, seed, block_size, number_block)
    path = sf.write(out)
    click.echo(
        f"{path}: " + ", ".join(f"{k} {v}" for k, v in sf.counts().items()) + f"; sha256 {sf.sha256[:16]}"
    )
