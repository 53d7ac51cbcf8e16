"""``saropt build`` on bad input: one clear line, exit status 1, no traceback, earlier output intact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.unit.buildutil import grid_tiepoints, make_pair, write_csv, write_raster
from tests.unit.cliutil import run_cli as run

SIZE = 200
SHIFT = (6, -4)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    d = tmp_path_factory.mktemp("pair")
    sar, opt = make_pair(d, size=SIZE, shift=SHIFT, seed=3)
    tp = write_csv(d / "tp.csv", grid_tiepoints(SIZE, SHIFT, n=4, noise=0.2))
    return sar, opt, tp


def _build(sar: Path, opt: Path, out: Path, *extra: str) -> tuple[int, str]:
    return run(
        [
            "build",
            "--sar",
            str(sar),
            "--optical",
            str(opt),
            "--out",
            str(out),
            "--patch-size",
            "64",
            "-j",
            "1",
            *extra,
        ]
    )


def _one_error_line(code: int, output: str, *needles: str) -> str:
    assert code == 1, output
    assert "Traceback" not in output
    lines = [ln for ln in output.splitlines() if ln.startswith("saropt: error:")]
    assert len(lines) == 1, output
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_missing_file(pair, tmp_path: Path) -> None:
    _, opt, tp = pair
    out = tmp_path / "out"
    code, output = _build(tmp_path / "nope.tif", opt, out, "--tiepoints", str(tp))
    _one_error_line(code, output, "nope.tif", "does not exist")
    assert not out.exists()


def test_unreadable_file(pair, tmp_path: Path) -> None:
    _, opt, tp = pair
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00 this is not a tiff")
    out = tmp_path / "out"
    code, output = _build(bad, opt, out, "--tiepoints", str(tp))
    _one_error_line(code, output, "broken.tif")
    assert not out.exists()


def test_scenes_do_not_overlap(tmp_path: Path) -> None:
    # Georeferenced in the same CRS, 10 km apart: geocoding finds no overlap.
    sar, opt = make_pair(tmp_path, size=SIZE, seed=1, georef=True, opt_origin=(510000.0, 4600000.0))
    out = tmp_path / "out"
    code, output = _build(sar, opt, out)
    _one_error_line(code, output, "overlap")
    assert not out.exists()


def test_mismatched_crs(tmp_path: Path) -> None:
    # SAR georeferenced, optical not: geocoding cannot relate them.
    sar, _ = make_pair(tmp_path, size=SIZE, seed=1, georef=True)
    _, opt = make_pair(tmp_path, size=SIZE, seed=1, name="plain")
    out = tmp_path / "out"
    code, output = _build(sar, opt, out, "--tiepoints", "geocoding")
    _one_error_line(code, output, "georeferenced")
    assert not out.exists()


def test_too_few_tiepoints(pair, tmp_path: Path) -> None:
    sar, opt, _ = pair
    tp = write_csv(tmp_path / "two.csv", grid_tiepoints(SIZE, SHIFT, n=4)[:2])
    code, output = _build(sar, opt, tmp_path / "out", "--tiepoints", str(tp))
    _one_error_line(code, output, "affine", "at least 3")
    assert not (tmp_path / "out").exists()


def test_degenerate_tiepoints(pair, tmp_path: Path) -> None:
    sar, opt, _ = pair
    xs = np.linspace(20, 150, 8)
    rows = np.stack([xs + SHIFT[0], xs + SHIFT[1], xs, xs], 1)  # all on one line
    tp = write_csv(tmp_path / "line.csv", rows)
    code, output = _build(sar, opt, tmp_path / "out", "--tiepoints", str(tp))
    line = _one_error_line(code, output)
    assert "collinear" in line or "degenerate" in line, line
    assert not (tmp_path / "out").exists()


def test_tiepoints_outside_image(pair, tmp_path: Path) -> None:
    sar, opt, _ = pair
    rows = grid_tiepoints(SIZE, SHIFT, n=4)
    rows[3, 0] = 950.0  # SAR x far outside the 200 px image
    tp = write_csv(tmp_path / "out.csv", rows)
    code, output = _build(sar, opt, tmp_path / "out", "--tiepoints", str(tp))
    _one_error_line(code, output, "outside the SAR image", "point 3")
    assert not (tmp_path / "out").exists()


def test_unsupported_band_layout(pair, tmp_path: Path) -> None:
    sar, _, tp = pair
    two = write_raster(tmp_path / "two_band.tif", np.zeros((2, SIZE, SIZE), np.uint8))
    code, output = _build(sar, two, tmp_path / "out", "--tiepoints", str(tp))
    _one_error_line(code, output, "2 bands")
    assert not (tmp_path / "out").exists()


def test_output_folder_holds_something_else(pair, tmp_path: Path) -> None:
    sar, opt, tp = pair
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    for extra in ([], ["--overwrite"]):
        code, output = _build(sar, opt, out, "--tiepoints", str(tp), *extra)
        _one_error_line(code, output, "saropt did not write")
    assert (out / "thesis.tex").read_text() == "precious"
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]


def test_every_patch_rejected(pair, tmp_path: Path) -> None:
    sar, opt, tp = pair
    out = tmp_path / "out"
    code, output = _build(sar, opt, out, "--tiepoints", str(tp), "--set", "quality.texture_min=1000")
    _one_error_line(code, output, "rejected", "texture")
    # The dataset is still written so the user can see why.
    from saropt.dataset.index import read_index

    df = read_index(out)
    assert len(df) > 0 and not df["keep"].any()
    assert df["flag_texture"].all()
    # Running it again says the same, without rebuilding.
    code2, output2 = _build(sar, opt, out, "--tiepoints", str(tp), "--set", "quality.texture_min=1000")
    _one_error_line(code2, output2, "rejected")


def test_unknown_config_key(pair, tmp_path: Path) -> None:
    sar, opt, tp = pair
    code, output = _build(
        sar, opt, tmp_path / "out", "--tiepoints", str(tp), "--set", "quality.texture_minimum=2"
    )
    _one_error_line(code, output, "texture_minimum")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"scenes: [{{sar: {sar}, optical: {opt}, tiepoints: {tp}}}]\npatch_sise: 64\n")
    code, output = run(["build", str(cfg), "--out", str(tmp_path / "out")])
    _one_error_line(code, output, "patch_sise")
    assert not (tmp_path / "out").exists()


def test_bad_input_with_overwrite_keeps_the_old_dataset(pair, tmp_path: Path) -> None:
    sar, opt, tp = pair
    out = tmp_path / "out"
    code, output = _build(sar, opt, out, "--tiepoints", str(tp), "--set", "quality.enabled=[nodata]")
    assert code == 0, output
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    code, output = _build(
        sar, opt, out, "--tiepoints", str(tmp_path / "missing.csv"), "--stride", "32", "--overwrite"
    )
    _one_error_line(code, output, "missing.csv")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before
