"""End-to-end ``saropt build`` on a small synthetic pair with a known warp.

One 768 x 768 synthetic scene (patches 128 px, units of 256 px so that several units run in parallel) is built
once inline and reused; the other builds compare against it byte for byte.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from saropt.dataset.build import build_dataset
from saropt.dataset.config import config_from_dict
from saropt.dataset.demo import transform_error
from saropt.dataset.index import BASE_COLUMNS, TAIL_COLUMNS, read_index
from saropt.errors import OutputExistsError
from tests.unit.buildutil import make_pair, tree_hashes
from tests.unit.cliutil import run_cli as _cli

SIZE = 768
PATCH = 128


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory):
    from saropt.synthetic import make_scene_pair

    d = tmp_path_factory.mktemp("scene")
    return make_scene_pair(d, sar_size=(SIZE, SIZE), seed=0, sea_fraction=0.35)


def _cfg(pair, **extra):
    raw = {
        "scenes": [
            {
                "id": "syn",
                "sar": str(pair.sar_path),
                "optical": str(pair.opt_path),
                "tiepoints": str(pair.tiepoints_path),
            }
        ],
        "patch_size": PATCH,
        "unit_size": 256,
    }
    raw.update(extra)
    return config_from_dict(raw)


@pytest.fixture(scope="module")
def built(pair, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("a") / "ds"
    res = build_dataset(_cfg(pair), out, workers=1)
    return res


def test_files_index_and_flags(built) -> None:
    root = built.root
    df = read_index(root)
    s = built.summary
    # layout
    assert (root / "sar_128_oc_0.2").is_dir() and (root / "opt_128_oc_0.2").is_dir()
    for name in (
        "index.parquet",
        "build.yaml",
        "summary.json",
        "overview/syn__full.png",
        "overview/patches.png",
    ):
        assert (root / name).is_file(), name
    assert not (root / ".saropt").exists()
    # columns: fixed base and tail, every score and flag
    cols = list(df.columns)
    assert cols[: len(BASE_COLUMNS)] == [c for c, _ in BASE_COLUMNS]
    assert cols[-len(TAIL_COLUMNS) :] == [c for c, _ in TAIL_COLUMNS]
    for c in ("nodata_fraction", "texture", "seamline", "regcheck", "phash_sar", "phash_opt"):
        assert c in cols
    flags = [c for c in cols if c.startswith("flag_")]
    assert set(flags) == {"flag_nodata", "flag_texture", "flag_seamline", "flag_duplicate", "flag_regcheck"}
    # patch numbers, windows on the grid
    assert list(df["patch_id"]) == list(range(len(df)))
    assert len(df) == s["pairs_total"] > 20
    assert set(df["width"]) == {PATCH} and set(df["height"]) == {PATCH}
    assert set(np.diff(sorted(set(df["col_off"])))) == {102}
    # keep <=> no flag; reasons exactly for rejected ones; files where the index says
    any_flag = df[flags].any(axis=1)
    assert (df["keep"] == ~any_flag).all()
    assert ((df["reject_reasons"] == "") == df["keep"]).all()
    assert 0 < df["keep"].sum() < len(df)
    for r in df.itertuples():
        prefix = "" if r.keep else "rejected/"
        assert r.sar_path == f"{prefix}sar_128_oc_0.2/{r.patch_id}.png"
        assert r.opt_path == f"{prefix}opt_128_oc_0.2/{r.patch_id}.png"
        assert (root / r.sar_path).is_file() and (root / r.opt_path).is_file()
    n_png = len(list((root / "sar_128_oc_0.2").glob("*.png")))
    assert n_png == df["keep"].sum()
    # provenance
    assert set(df["registration_method"]) == {"tiepoints"} and set(df["transform_model"]) == {"affine"}
    assert df["registration_rmse_px"].iloc[0] < 1.0
    assert df["crs"].isna().all()  # the synthetic pair is not georeferenced
    # summary agrees with the index
    assert s["kept"] == int(df["keep"].sum())
    assert s["rejected_by_reason"]["texture"] == int(df["flag_texture"].sum())


def test_patch_pngs_match_the_scene(built, pair) -> None:
    """A kept SAR patch is exactly the SAR window mapped to 8-bit; its optical partner is registered."""
    from saropt.io.images import read_image
    from saropt.io.radiometry import SarMapping
    from saropt.io.raster import open_scene

    df = read_index(built.root)
    r = df[df["keep"]].iloc[0]
    sar = open_scene(pair.sar_path, "sar")
    from saropt.io.windows import Window

    w = Window(int(r.col_off), int(r.row_off), int(r.width), int(r.height))
    data, valid = sar.read(w)
    mapping = SarMapping.from_dict(_resolved(built.root)["scenes"][0]["sar_mapping"])
    assert np.array_equal(read_image(built.root / r.sar_path), mapping.apply(data, valid))
    # the unit size is recorded with the build (it changes a few scores)
    assert _resolved(built.root)["unit_size"] == 256


def test_read_region_gives_the_arrays_patches_are_cut_from(built, pair) -> None:
    """``read_region`` (whole-scene evaluation, e.g. saropt calibrate) reads what a build cuts: the same SAR,
    and the same optical up to the warp's rounding, over the region's footprint."""
    from saropt.dataset.plan import resolve_plan
    from saropt.dataset.units import read_region
    from saropt.errors import InputError
    from saropt.io.images import read_image

    plan = resolve_plan(_cfg(pair))
    win, a = read_region(plan, 0)
    assert win == plan.scenes[0].regions[0].footprint and a.sar_data is None
    assert a.sar_u8.shape == (win.height, win.width) and a.opt_u8.shape == (win.height, win.width, 3)
    assert 0.5 < a.valid.mean() < 1.0  # the footprint is the optical's bounding box: its corners stay empty
    df = read_index(built.root)
    for r in df[df["keep"]].iloc[:5].itertuples():
        y, x = r.row_off - win.row_off, r.col_off - win.col_off
        rows, cols = slice(y, y + r.height), slice(x, x + r.width)
        assert np.array_equal(read_image(built.root / r.sar_path), a.sar_u8[rows, cols])
        diff = read_image(built.root / r.opt_path).astype(int) - a.opt_u8[rows, cols]
        # OpenCV's fixed-point warp rounds a few pixels differently from another block origin: one grey level
        assert np.abs(diff).max() <= 1 and np.mean(diff != 0) < 1e-3
    small, b = read_region(plan, 0, max_side=100)
    assert (small.width, small.height) == (100, 100) and b.sar_u8.shape == (100, 100)
    assert abs(small.col_off + 50 - (win.col_off + win.width / 2)) <= 1  # the central part
    with pytest.raises(InputError, match="no patches in region 0 of scene pair 3"):
        read_region(plan, 3)


def _resolved(root: Path) -> dict:
    import yaml

    return yaml.safe_load((root / "build.yaml").read_text())["resolved"]


def test_registration_matches_truth(built, pair) -> None:
    from saropt.registration.transforms import transform_from_dict

    reg = _resolved(built.root)["scenes"][0]["regions"][0]["registration"]
    fitted = transform_from_dict(reg["transform"])
    rmse, worst = transform_error(fitted, np.asarray(pair.opt_to_sar), (SIZE, SIZE))
    assert rmse < 0.5, (rmse, worst)
    # RANSAC flagged the synthetic gross outliers instead of fitting them
    assert reg["inliers"] < reg["tiepoints"]


def test_open_sea_is_rejected_as_textureless(built, pair) -> None:
    import rasterio

    with rasterio.open(pair.classes_path) as ds:
        classes = ds.read(1)
    df = read_index(built.root)
    sea = []
    for r in df.itertuples():
        win = classes[r.row_off : r.row_off + r.height, r.col_off : r.col_off + r.width]
        if (win == 1).all():  # LandCover.SEA only: open water, no ship, no coast
            sea.append(r)
    assert sea, "the synthetic scene should have open-sea patches"
    assert all(not r.keep and r.flag_texture for r in sea), [
        (r.patch_id, r.texture, r.reject_reasons) for r in sea
    ]


def test_splits_never_share_overlapping_patches(built) -> None:
    df = read_index(built.root)
    kept = df[df["keep"]]
    assert set(kept["split"]) <= {"train", "val", "test", "buffer"}
    assert (df.loc[~df["keep"], "split"] == "").all()
    real = kept[kept["split"] != "buffer"]
    rows = list(real.itertuples())
    for i, a in enumerate(rows):
        for b in rows[i + 1 :]:
            if a.split == b.split or a.scene_id != b.scene_id:
                continue
            overlap = (
                a.col_off < b.col_off + b.width
                and b.col_off < a.col_off + a.width
                and a.row_off < b.row_off + b.height
                and b.row_off < a.row_off + a.height
            )
            assert not overlap, (a.patch_id, a.split, b.patch_id, b.split)


def test_workers_give_identical_bytes(built, pair, tmp_path: Path) -> None:
    res = build_dataset(_cfg(pair), tmp_path / "ds", workers=2)
    assert res.units_total > 4
    assert tree_hashes(res.root) == tree_hashes(built.root)


def test_unit_chunks_are_runs_of_one_block_row(pair) -> None:
    from saropt.dataset.build import unit_chunks
    from saropt.dataset.plan import resolve_plan

    plan = resolve_plan(_cfg(pair))
    todo = list(range(len(plan.units)))
    assert len({u.row_key for u in plan.units}) > 1  # several block rows, several units per row
    for workers, todo_ in ((1, todo), (2, todo), (3, todo), (2, todo[1::3]), (64, todo)):
        chunks = unit_chunks(plan, todo_, workers)
        assert [i for c in chunks for i in c] == todo_  # every unit once, in plan order
        longest = max(1, len(todo_) // (2 * workers))
        for c in chunks:
            assert 1 <= len(c) <= longest
            assert len({plan.units[i].row_key for i in c}) == 1
            assert list(c) == list(range(c[0], c[0] + len(c)))  # neighbours only
        assert len(chunks) >= min(len(todo_), 2 * workers)  # every worker gets work
    # one worker: whole rows
    rows = unit_chunks(plan, todo, 1)
    assert all(plan.units[a[-1]].row_key != plan.units[b[0]].row_key for a, b in zip(rows, rows[1:]))


def test_interrupted_build_resumes(built, pair, tmp_path: Path) -> None:
    out = tmp_path / "ds"

    class Stop(Exception):
        pass

    def stop_after_three(done: int, total: int) -> None:
        if done >= 3:
            raise Stop

    with pytest.raises(Stop):
        build_dataset(_cfg(pair), out, workers=1, progress=stop_after_three)
    # a partial build: work state, no index, and it is not mistaken for a dataset
    assert (out / ".saropt" / "state.json").is_file() and not (out / "index.parquet").exists()
    assert not (out / ".saropt" / "lock").exists()
    records = sorted((out / ".saropt" / "units").glob("*.json"))
    assert len(records) == 3
    # a half-written file from the crash is cleaned up
    (out / "sar_128_oc_0.2" / ".9999.png.123-abc.tmp.png").write_bytes(b"partial")
    # a finished unit whose file went missing is redone; the two others are not touched
    rec = json.loads(records[0].read_text())
    lost = next(p["opt_path"] for p in rec["patches"] if p["opt_path"])
    (out / lost).unlink()
    untouched = {
        q["sar_path"]: (out / q["sar_path"]).stat().st_mtime_ns
        for r in records[1:]
        for q in json.loads(r.read_text())["patches"]
        if q["sar_path"]
    }
    seen = []
    res = build_dataset(_cfg(pair), out, workers=1, progress=lambda d, t: seen.append(d))
    assert res.status == "resumed"
    assert res.units_run == res.units_total - 2
    assert seen[0] == 2  # the finished units were reported done, not redone
    assert tree_hashes(out) == tree_hashes(built.root)
    assert not (out / ".saropt").exists()
    for rel, mtime in untouched.items():  # not rewritten (near-duplicates may have moved to rejected/)
        path = out / rel if (out / rel).exists() else out / "rejected" / rel
        assert path.stat().st_mtime_ns == mtime, rel


def test_rerun_and_overwrite_rules(built, pair, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    shutil.copytree(built.root, out)
    assert build_dataset(_cfg(pair), out, workers=1).status == "complete"
    other = _cfg(pair, stride=64)
    with pytest.raises(OutputExistsError, match="another configuration"):
        build_dataset(other, out, workers=1)
    res = build_dataset(other, out, workers=1, overwrite=True)
    assert res.status == "built"
    assert (out / "sar_128_oc_0.5").is_dir() and not (out / "sar_128_oc_0.2").exists()


def test_changed_input_file_is_another_configuration(built, pair, tmp_path: Path) -> None:
    """The same configuration over a replaced input file is not "already built" and is not resumed."""
    scene = tmp_path / "scene"
    shutil.copytree(Path(pair.sar_path).parent, scene)
    moved = type(pair)(
        **{
            **pair.__dict__,
            "sar_path": scene / Path(pair.sar_path).name,
            "opt_path": scene / Path(pair.opt_path).name,
            "tiepoints_path": scene / Path(pair.tiepoints_path).name,
        }
    )
    cfg = _cfg(moved)
    out = tmp_path / "ds"
    assert build_dataset(cfg, out, workers=1).status == "built"
    assert build_dataset(cfg, out, workers=1).status == "complete"
    lines = Path(moved.tiepoints_path).read_text().splitlines()
    Path(moved.tiepoints_path).write_text("\n".join(lines[:-3]) + "\n")  # three tie points fewer
    with pytest.raises(OutputExistsError, match="another configuration"):
        build_dataset(cfg, out, workers=1)


def test_geotiff_patches_keep_values(pair, tmp_path: Path) -> None:
    import rasterio

    from saropt.io.raster import open_scene
    from saropt.io.windows import Window

    cfg = _cfg(
        pair, outputs={"geotiff": True, "write_rejected": False}, stride=160, quality={"enabled": ["nodata"]}
    )
    res = build_dataset(cfg, tmp_path / "ds", workers=1)
    df = read_index(res.root)
    assert df.loc[~df["keep"], "sar_path"].isna().all()  # rejected PNGs not written
    r = df.iloc[0]
    with rasterio.open(res.root / r.sar_tif) as ds:
        got = ds.read(1)
        assert ds.dtypes[0] == "float32"
    data, valid = open_scene(pair.sar_path, "sar").read(Window(int(r.col_off), int(r.row_off), PATCH, PATCH))
    assert np.array_equal(np.where(valid, data[0], np.nan), got, equal_nan=True)
    with rasterio.open(res.root / r.opt_tif) as ds:
        assert ds.count == 3


def test_inspect_json(built) -> None:
    code, out = _cli(["inspect", str(built.root), "--json"])
    assert code == 0, out
    info = json.loads(out)
    for key in (
        "pairs_total",
        "kept",
        "rejected_by_reason",
        "splits",
        "registration_rmse_px",
        "patch_size",
        "stride",
        "overlap",
    ):
        assert key in info
    df = read_index(built.root)
    assert info["pairs_total"] == len(df) and info["kept"] == int(df["keep"].sum())
    assert info["splits"]["train"] == int((df["split"] == "train").sum())
    assert info["rejected_by_reason"]["regcheck"] == int(df["flag_regcheck"].sum())
    assert info["stride"] == 102 and info["patch_size"] == PATCH
    assert 0 < info["registration_rmse_px"]["syn"] < 1.0
    code, text = _cli(["inspect", str(built.root)])
    assert code == 0 and "stride 102" in text and "79.7%" in text
    code, text = _cli(["inspect", str(built.root.parent)])
    assert code == 1 and text.startswith("saropt: error:") and "not a saropt dataset" in text


def test_aligned_mode_and_folders_of_pairs(tmp_path: Path) -> None:
    # Two SEN1-2-style pairs already on one grid, given as folders paired by file name.
    sar_dir, opt_dir = tmp_path / "s1", tmp_path / "s2"
    for name, seed in (("tile_a", 1), ("tile_b", 2)):
        s, o = make_pair(tmp_path / "raw", size=300, seed=seed, name=name)
        sar_dir.mkdir(exist_ok=True)
        opt_dir.mkdir(exist_ok=True)
        s.rename(sar_dir / f"{name}.tif")
        o.rename(opt_dir / f"{name}.tif")
    out = tmp_path / "ds"
    code, text = _cli(
        [
            "build",
            "--sar",
            str(sar_dir),
            "--optical",
            str(opt_dir),
            "--aligned",
            "--out",
            str(out),
            "--patch-size",
            "100",
            "--stride",
            "100",
            "-j",
            "1",
            "--split-method",
            "scene",
        ]
    )
    assert code == 0, text
    df = read_index(out)
    assert sorted(set(df["scene_id"])) == ["tile_a", "tile_b"]
    assert set(df["registration_method"]) == {"identity"} and set(df["transform_model"]) == {"identity"}
    assert len(df) == 2 * 9  # 3 x 3 windows of 100 px in each 300 px image
    # identity: the optical patch is the optical image cut at the same window
    from saropt.io.images import read_image

    r = df[df["keep"]].iloc[0]
    import rasterio

    with rasterio.open(opt_dir / f"{r.scene_id}.tif") as ds:
        opt = np.moveaxis(ds.read(), 0, -1)[r.row_off : r.row_off + 100, r.col_off : r.col_off + 100]
    assert np.array_equal(read_image(out / r.opt_path), opt)
    # a scene split keeps each scene in one split
    kept = df[df["keep"]]
    assert kept.groupby("scene_id")["split"].nunique().max() == 1
    assert "registration  tile_a: identity (pre-aligned pair)" in text
    # the same scenes rebuilt (another patch grid) with the first build's scene split, swapped by hand
    first = kept.groupby("scene_id")["split"].first().to_dict()
    swapped = df.copy()
    other = {"tile_a": first["tile_b"], "tile_b": first["tile_a"]}
    swapped.loc[swapped["keep"], "split"] = swapped.loc[swapped["keep"], "scene_id"].map(other)
    ref = tmp_path / "ref"
    ref.mkdir()
    swapped.to_parquet(ref / "index.parquet")
    args = ["build", "--sar", str(sar_dir), "--optical", str(opt_dir), "--aligned", "--patch-size", "100",
            "--stride", "50", "-j", "1"]  # fmt: skip
    code, text = _cli([*args, "--out", str(tmp_path / "ds2"), "--split-from", str(ref)])
    assert code == 0, text
    df2 = read_index(tmp_path / "ds2")
    kept2 = df2[df2["keep"]]
    assert len(df2) == 2 * 25 and kept2.groupby("scene_id")["split"].first().to_dict() == other
    # a block split cannot be carried over; a missing index is one line
    swapped.loc[swapped.index[0], "split"] = "val" if swapped["split"].iloc[1] != "val" else "test"
    swapped.loc[swapped.index[1:], "scene_id"] = swapped["scene_id"].iloc[0]
    swapped.to_parquet(ref / "index.parquet")
    code, text = _cli([*args, "--out", str(tmp_path / "ds3"), "--split-from", str(ref)])
    assert code == 1 and "lies in several splits" in text and not (tmp_path / "ds3" / "index.parquet").exists()
    code, text = _cli([*args, "--out", str(tmp_path / "ds4"), "--split-from", str(tmp_path)])
    assert code == 1 and text.count("\n") <= 1 and "no index.parquet" in text
    code, text = _cli([*args, "--out", str(tmp_path / "ds5"), "--split-from", str(out), "--split-method", "block"])
    assert code == 1 and "needs --split-method scene" in text


def test_subregions_are_registered_and_tiled_separately(tmp_path: Path) -> None:
    from tests.unit.buildutil import grid_tiepoints, write_csv

    shift = (5, -3)
    sar, opt = make_pair(tmp_path, size=320, shift=shift, seed=4)
    tp = write_csv(tmp_path / "tp.csv", grid_tiepoints(320, shift, n=6, noise=0.1))
    cfg = config_from_dict(
        {
            "scenes": [
                {
                    "id": "s",
                    "sar": str(sar),
                    "optical": str(opt),
                    "tiepoints": str(tp),
                    "subregions": [
                        {"name": "west", "box": [0, 0, 160, 320]},
                        {
                            "name": "east",
                            "polygon": [[160, -0.5], [319.5, -0.5], [319.5, 319.5], [160, 319.5]],
                        },
                    ],
                }
            ],
            "patch_size": 64,
            "stride": 64,
            "quality": {"enabled": ["nodata"]},
        }
    )
    res = build_dataset(cfg, tmp_path / "ds", workers=1)
    df = read_index(res.root)
    assert list(df["subregion"].unique()) == ["west", "east"]
    west, east = df[df["subregion"] == "west"], df[df["subregion"] == "east"]
    assert (west["col_off"] + west["width"] <= 160).all() and (east["col_off"] >= 160).all()
    assert list(df["patch_id"]) == list(range(len(df)))  # numbering continues across sub-regions
    regions = res.summary["scenes"][0]["regions"]
    assert [r["name"] for r in regions] == ["west", "east"]
    # each region fitted its own points (those inside it), both close to the true shift
    assert all(0 < r["tiepoints"] < 36 and r["rmse_px"] < 0.5 for r in regions)
    assert set(res.summary["registration_rmse_px"]) == {"s/west", "s/east"}
    assert (res.root / "overview" / "s__west.png").is_file() and (
        res.root / "overview" / "s__east.png"
    ).is_file()


def test_overview_from_unit_views_matches_decimated_reads(pair, tmp_path) -> None:
    """The overview pasted from the units' views shows the same images as computing it from decimated reads."""
    from saropt.dataset.layout import Layout
    from saropt.dataset.overview import view_geometry, views_from_units
    from saropt.dataset.plan import resolve_plan
    from saropt.dataset.units import _quality_config, prepare_dirs, run_unit

    cfg = _cfg(pair)
    plan = resolve_plan(cfg)
    layout = Layout.for_grid(tmp_path, PATCH, plan.overlap)
    prepare_dirs(layout, plan)
    q = _quality_config(plan)
    sp = plan.scenes[0]
    rp = sp.regions[0]
    assert views_from_units(plan, layout, sp, rp) is None  # no unit has run: the caller reads instead
    for u in plan.units:
        run_unit(plan, u, layout, q)
    sar, opt = views_from_units(plan, layout, sp, rp)
    from saropt.dataset.overview import _sar_view, _warped_view

    view, scale, shape = view_geometry(sp, rp)
    ref_sar, xs, ys = _sar_view(sp, view, scale)
    ref_opt = _warped_view(sp, rp, xs, ys)
    assert sar.shape == ref_sar.shape == shape and opt.shape[:2] == shape
    covered = (sar > 0) & (ref_sar > 0)
    assert covered.mean() > 0.8  # units cover all but the margin and the strip past the last patch
    # same place, same mapping: the optical agrees closely; the SAR differs by speckle (nearest samples there)
    d_opt = np.abs(opt.astype(int) - ref_opt.astype(int))[covered]
    assert np.median(d_opt) <= 2
    assert abs(float(sar[covered].mean()) - float(ref_sar[covered].mean())) < 3


def test_flags_do_not_depend_on_the_unit_grid(pair, built, tmp_path: Path) -> None:
    # Each unit reads the seamline context's margin around its block, so a patch at a unit's edge is judged
    # like one inside: 128 px units (every patch at a unit's edge) flag exactly as the 256 px units of `built`.
    small = build_dataset(_cfg(pair, unit_size=128), tmp_path / "u128", workers=1)
    a = read_index(small.root).set_index("patch_id")
    b = read_index(built.root).set_index("patch_id")
    assert len(a) == len(b) and a["seamline"].notna().sum() > 10
    flags = [c for c in a.columns if c.startswith("flag_")] + ["keep"]
    assert "flag_seamline" in flags
    assert (a[flags] == b[flags]).all().all()
    # scores move only in their last digits (the warp's fixed-point rounding and the context's block grid)
    assert np.allclose(a["texture"], b["texture"], rtol=1e-3, equal_nan=True)
