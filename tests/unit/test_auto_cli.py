"""``saropt register``: the real command on small image files; RESULT.json, tie points, overview, errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from saropt.io.tiepoints import read_tiepoints
from tests.unit.autoutil import make_pair, similarity
from tests.unit.cliutil import run_cli as run


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    d = tmp_path_factory.mktemp("reg")
    # a rotated SAR patch with black wedge corners, like the SRIF pairs: the wedges must be masked as nodata
    truth = similarity(-60.0, 1.0, (127.5, 127.5), (127.5, 127.5))
    pair = make_pair(truth, seed=7)
    sar = np.clip(pair.sar * 1.2, 1, 255).astype(np.uint8)
    rot = cv2.getRotationMatrix2D((127.5, 127.5), 25.0, 1.0)
    sar_rot = cv2.warpAffine(sar, rot, (256, 256), flags=cv2.INTER_LINEAR, borderValue=0)
    truth_rot = np.vstack([rot, [0, 0, 1]]) @ truth
    cv2.imwrite(str(d / "sar.png"), sar_rot)
    cv2.imwrite(str(d / "opt.png"), pair.opt)
    return d / "sar.png", d / "opt.png", truth_rot


def test_register_writes_result_tiepoints_and_overview(
    files: tuple[Path, Path, np.ndarray], tmp_path: Path
) -> None:
    sar, opt, truth = files
    out = tmp_path / "res" / "RESULT.json"
    code, text = run(
        ["-q", "register", str(sar), str(opt), "-o", str(out), "--tiepoints-out", str(tmp_path / "tp.csv")]
    )
    assert code == 0, text
    res = json.loads(out.read_text())
    for key in (
        "model",
        "optical_to_sar",
        "rmse_px",
        "loo_rmse_px",
        "n_tiepoints",
        "n_inliers",
        "seconds",
        "tiepoints",
    ):
        assert key in res
    m = np.array(res["optical_to_sar"])
    assert m.shape == (3, 3)
    from saropt.registration.auto.evaluate import transform_rmse

    assert transform_rmse(m, truth, (256, 256), valid=_inside(256, 40)) < 0.6
    pts = res["tiepoints"]
    assert len(pts) == res["n_tiepoints"] >= res["n_inliers"] >= 30
    assert {"x_sar", "y_sar", "x_opt", "y_opt", "score", "inlier", "residual_px"} <= set(pts[0])
    # no tie point in the black wedges
    xy = np.array([[p["x_sar"], p["y_sar"]] for p in pts])
    wedge = cv2.warpAffine(
        np.ones((256, 256), np.uint8), cv2.getRotationMatrix2D((127.5, 127.5), 25.0, 1.0), (256, 256)
    )
    assert wedge[np.rint(xy[:, 1]).astype(int), np.rint(xy[:, 0]).astype(int)].all()
    tp = read_tiepoints(tmp_path / "tp.csv")
    assert len(tp) == res["n_inliers"]
    png = out.with_name("RESULT_overview.png")
    img = cv2.imread(str(png))
    assert img is not None and min(img.shape[:2]) >= 512
    assert not list(out.parent.glob(".*tmp*"))  # atomic writes leave no temporaries
    summary = json.loads(text[text.index("{") :])
    assert summary["n_inliers"] == res["n_inliers"]


def _inside(n: int, margin: int) -> np.ndarray:
    v = np.zeros((n, n), bool)
    v[margin:-margin, margin:-margin] = True
    return v


def test_qgis_points_and_no_overview(files: tuple[Path, Path, np.ndarray], tmp_path: Path) -> None:
    sar, opt, _ = files
    out = tmp_path / "r.json"
    code, text = run(
        [
            "-q",
            "register",
            str(sar),
            str(opt),
            "-o",
            str(out),
            "--model",
            "similarity",
            "--tiepoints-out",
            str(tmp_path / "g.points"),
            "--overview",
            "",
        ]
    )
    assert code == 0, text
    assert json.loads(out.read_text())["model"] == "similarity"
    assert (tmp_path / "g.points").read_text().splitlines()[0].startswith("mapX,mapY,sourceX,sourceY")
    assert not (tmp_path / "r_overview.png").exists()


def test_blank_optical_is_one_error_line(files: tuple[Path, Path, np.ndarray], tmp_path: Path) -> None:
    sar, _, _ = files
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200), 90, np.uint8))
    out = tmp_path / "x.json"
    code, text = run(["-q", "register", str(sar), str(blank), "-o", str(out)])
    assert code == 1
    lines = [ln for ln in text.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("saropt: error:")
    assert "no textured candidate points (image is blank or texture-less)" in lines[0]
    assert not out.exists()


def test_bad_output_name_is_one_error_line(files: tuple[Path, Path, np.ndarray], tmp_path: Path) -> None:
    sar, opt, _ = files
    code, text = run(["-q", "register", str(sar), str(opt), "-o", str(tmp_path / "out.txt")])
    assert code == 1 and "must end in .json" in text
    code, text = run(
        ["-q", "register", str(sar), str(tmp_path / "missing.png"), "-o", str(tmp_path / "o.json")]
    )
    assert code == 1 and "missing.png" in text
