"""``saropt calibrate``: the seamline filter's false alarms and injected-seam detection on the user's scenes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.cliutil import run_cli as run

SIZE = 640


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory):
    from saropt.synthetic import make_scene_pair

    return make_scene_pair(tmp_path_factory.mktemp("scene"), sar_size=(SIZE, SIZE), seed=2, sea_fraction=0.0)


def _args(pair, *extra: str) -> list[str]:
    return [
        "calibrate",
        "--sar",
        str(pair.sar_path),
        "--optical",
        str(pair.opt_path),
        "--tiepoints",
        str(pair.tiepoints_path),
        "--patch-size",
        "128",
        *extra,
    ]


def test_json_table(pair) -> None:
    code, out = run(_args(pair, "--offsets", "30,80", "--trials", "2", "--json"))
    assert code == 0, out
    res = json.loads(out)
    assert res["patch_size"] == 128 and res["stride"] == 32 and res["offsets"] == [30.0, 80.0]
    assert res["clean_patches"] > 100 and res["seam_patches"]["80"] > 10
    rows = res["thresholds"]
    assert [r["seamline_max"] for r in rows] == [15.0, 20.0, 25.0, 30.0, 35.0]
    # a higher threshold flags fewer patches, clean or seamed; a stronger seam is found more often
    for a, b in zip(rows, rows[1:]):
        assert b["false_alarm"] <= a["false_alarm"] and b["detection"]["80"] <= a["detection"]["80"]
    default = rows[2]
    assert default["detection"]["80"] >= default["detection"]["30"]
    assert default["detection"]["80"] >= 0.5 and res["roc_auc"]["80"] > 0.8
    if res["suggested"] is not None:
        ok = [r for r in rows if r["seamline_max"] == res["suggested"]][0]
        assert ok["false_alarm"] <= 0.01


def test_examples_and_png(pair, tmp_path: Path) -> None:
    from saropt.io.images import read_image

    png = tmp_path / "examples.png"
    code, out = run(_args(pair, "--trials", "1", "--png", str(png), "--json"))
    assert code == 0, out
    res = json.loads(out)
    ex = res["examples"]
    assert 0 < len(ex) <= 12 and res["png"] == str(png)
    assert [e["score"] for e in ex] == sorted((e["score"] for e in ex), reverse=True)
    # the strongest clean patch's score is the false-alarm table's: flagged at every threshold below it
    flagged_15 = res["thresholds"][0]["false_alarm"] * res["clean_patches"]
    assert sum(e["score"] > 15 for e in ex) == min(len(ex), round(flagged_15))
    img = read_image(png)
    assert img.ndim == 3 and img.shape[2] == 3 and img.shape[0] > 128


def test_text_output_and_same_figures_as_json(pair) -> None:
    code, text = run(_args(pair, "--trials", "1"))
    assert code == 0, text
    assert "(default)" in text and "detected +-40" in text and "ROC area" in text
    code, out = run(_args(pair, "--trials", "1", "--json"))
    fa = json.loads(out)["thresholds"][2]["false_alarm"]
    assert f"{fa:.1%}" in [line.split()[1] for line in text.splitlines() if line.strip().startswith("25 ")][0]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--offsets", "forty"], "--offsets must be numbers"),
        (["--offsets", "0"], "--offsets must be non-zero"),
        (["--set", "patch_size=1024"], "smaller than one 1024 px patch"),
    ],
)
def test_bad_input_one_line(pair, extra: list[str], message: str) -> None:
    code, out = run(_args(pair, *extra))
    assert code != 0 and message in out and "Traceback" not in out, out


def test_no_scenes(tmp_path: Path) -> None:
    code, out = run(
        ["calibrate", "--sar", str(tmp_path / "missing.tif"), "--optical", str(tmp_path / "x.tif")]
    )
    assert code != 0 and "Traceback" not in out and len(out.strip().splitlines()) == 1, out
