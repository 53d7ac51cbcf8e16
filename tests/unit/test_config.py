"""Build configuration: YAML loading, relative paths, overrides, validation, resolved form and hash."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from saropt.dataset.config import (
    BuildConfig,
    apply_override,
    config_from_dict,
    config_to_yaml,
    load_config,
    scenes_from_paths,
)
from saropt.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "cfg" / "build.yaml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(yaml.safe_dump(data))
    return p


def test_load_resolves_relative_paths_against_yaml_folder(tmp_path: Path) -> None:
    p = _write(tmp_path, {"scenes": [{"sar": "data/s.tif", "optical": "../o.tif", "tiepoints": "pts.csv"}]})
    cfg = load_config(p)
    s = cfg.scenes[0]
    assert s.sar == str(tmp_path / "cfg" / "data" / "s.tif")
    assert s.optical == str(tmp_path / "o.tif")
    assert s.tiepoints == str(tmp_path / "cfg" / "pts.csv")
    assert s.id == "s"  # from the SAR file name


def test_defaults_and_stride_overlap() -> None:
    cfg = config_from_dict({"scenes": [{"sar": "/a.tif", "optical": "/b.tif"}]})
    assert cfg.patch_size == 256
    assert cfg.resolved_stride == 205  # default 20% overlap
    assert cfg.resolved_overlap == pytest.approx(1 - 205 / 256)
    cfg52 = config_from_dict({"scenes": [{"sar": "/a.tif", "optical": "/b.tif"}], "stride": 52})
    assert cfg52.resolved_overlap == pytest.approx(0.796875)
    cfg_ov = config_from_dict({"scenes": [{"sar": "/a.tif", "optical": "/b.tif"}], "overlap": 0.5})
    assert cfg_ov.resolved_stride == 128


def test_keywords_are_not_paths(tmp_path: Path) -> None:
    for kw in ("auto", "gcps", "geocoding", "identity"):
        cfg = config_from_dict(
            {"scenes": [{"sar": "a.tif", "optical": "b.tif", "tiepoints": kw}]}, base_dir=tmp_path
        )
        assert cfg.scenes[0].tiepoints == kw
        assert cfg.scenes[0].tiepoint_mode == kw


def test_overrides_nested_and_list_items(tmp_path: Path) -> None:
    p = _write(tmp_path, {"scenes": [{"sar": "s.tif", "optical": "o.tif"}], "quality": {"nodata_max": 0.05}})
    cfg = load_config(
        p,
        overrides=[
            "quality.texture_min=2.5",
            "scenes.0.tiepoints=identity",
            "split.fractions=[0.8, 0.1, 0.1]",
            "outputs.geotiff=true",
            "patch_size=128",
        ],
    )
    assert cfg.quality == {"nodata_max": 0.05, "texture_min": 2.5}
    assert cfg.scenes[0].tiepoints == "identity"
    assert cfg.split.fractions == (0.8, 0.1, 0.1)
    assert cfg.outputs.geotiff is True
    assert cfg.patch_size == 128


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"patch_sise": 256}, "patch_sise"),
        ({"outputs": {"pngs": True}}, "outputs.pngs"),
        ({"split": {"methd": "block"}}, "split.methd"),
        ({"quality": {"texture_minimum": 1}}, "texture_minimum"),
        ({"sar_mapping": {"kindd": "db"}}, "kindd"),
        ({"patch_size": "big"}, "patch_size"),
        ({"stride": 52, "overlap": 0.2}, "stride 52 and overlap 0.2 disagree"),
        ({"overlap": 1.5}, "overlap"),
        ({"model": "spline"}, "model"),
        ({"split": {"fractions": [0.5, 0.5, 0.5]}}, "split.fractions"),
        ({"outputs": {"png_compression": 12}}, "outputs.png_compression"),
    ],
)
def test_invalid_values_name_the_key(raw: dict, key: str) -> None:
    base = {"scenes": [{"sar": "/a.tif", "optical": "/b.tif"}]}
    base.update(raw)
    with pytest.raises(ConfigError) as exc:
        config_from_dict(base)
    msg = str(exc.value)
    assert key in msg
    assert "\n" not in msg


def test_scene_errors() -> None:
    with pytest.raises(ConfigError, match="scenes: no scene pair"):
        config_from_dict({})
    with pytest.raises(ConfigError, match=r"scenes\[0\]\.optical"):
        config_from_dict({"scenes": [{"sar": "/a.tif"}]})
    with pytest.raises(ConfigError, match=r"unknown config key 'scenes\[0\]\.tie_points'"):
        config_from_dict({"scenes": [{"sar": "/a.tif", "optical": "/b.tif", "tie_points": "x"}]})
    with pytest.raises(ConfigError, match="duplicate scene id"):
        config_from_dict(
            {"scenes": [{"sar": "/x/a.tif", "optical": "/b.tif"}, {"sar": "/y/a.tif", "optical": "/c.tif"}]}
        )


def test_override_syntax_errors() -> None:
    raw: dict = {"scenes": []}
    with pytest.raises(ConfigError, match="key.sub=value"):
        apply_override(raw, "patch_size")
    with pytest.raises(ConfigError, match="no list item 3"):
        apply_override(raw, "scenes.3.sar=x")


def test_resolved_yaml_roundtrip_and_hash(tmp_path: Path) -> None:
    cfg = config_from_dict({"scenes": [{"sar": "/a.tif", "optical": "/b.tif"}], "workers": 3, "out": "/o"})
    text = config_to_yaml(cfg)
    data = yaml.safe_load(text)
    # every default explicit, runtime keys left out
    for key in (
        "patch_size",
        "stride",
        "overlap",
        "quality",
        "sar_mapping",
        "optical_mapping",
        "split",
        "outputs",
    ):
        assert key in data
    assert "workers" not in data and "out" not in data
    from saropt.io.radiometry import SarMapping
    from saropt.quality.config import QualityConfig

    assert data["quality"] == QualityConfig().to_dict()
    assert data["sar_mapping"]["low_percentile"] == SarMapping().low_percentile
    again = config_from_dict(data)
    assert again.config_hash() == cfg.config_hash()
    # runtime keys do not change the hash; anything else does
    assert config_from_dict({**data, "workers": 1}).config_hash() == cfg.config_hash()
    assert config_from_dict({**data, "patch_size": 128, "stride": None}).config_hash() != cfg.config_hash()
    # unit_size changes outputs (per-unit warp rounding, seamline context), so it is configuration, not runtime
    assert data["unit_size"] is None
    assert config_from_dict({**data, "unit_size": 1024}).config_hash() != cfg.config_hash()
    # a default written out and left implicit hash the same
    implicit = config_from_dict({"scenes": [{"sar": "/a.tif", "optical": "/b.tif"}]})
    assert implicit.config_hash() == cfg.config_hash()


def test_example_config_is_valid() -> None:
    cfg = load_config(ROOT / "configs" / "build" / "example.yaml")
    assert isinstance(cfg, BuildConfig)
    assert [s.id for s in cfg.scenes] == ["omaha", "cfog-urban"]
    assert cfg.resolved_stride == 102


def test_scenes_from_folders(tmp_path: Path) -> None:
    sar, opt = tmp_path / "sar", tmp_path / "opt"
    sar.mkdir()
    opt.mkdir()
    for n in ("a", "b"):
        (sar / f"{n}.tif").write_bytes(b"")
        (opt / f"{n}.png").write_bytes(b"")
    entries = scenes_from_paths(sar, opt)
    assert [e["id"] for e in entries] == ["a", "b"]
    assert entries[1]["optical"].endswith("b.png")
    (sar / "c.tif").write_bytes(b"")
    (opt / "d.tif").write_bytes(b"")
    with pytest.raises(ConfigError, match="SAR without optical: c; optical without SAR: d"):
        scenes_from_paths(sar, opt)
