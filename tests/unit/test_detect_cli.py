"""``saropt detect`` end to end on a tiny fake VOC dataset and a small synthetic scene; one-line errors."""

from __future__ import annotations

import json

import pytest
import yaml

pytest.importorskip("torch")

from saropt.cli.main import main
from tests.unit.detectutil import make_scene, make_voc
from tests.unit.test_detect_models import TINY


def _run(capsys, args):
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_train_eval_predict(tmp_path, capsys):
    root = make_voc(tmp_path / "VOC2007")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"data": str(root), "model": TINY, "epochs": 1, "batch_size": 2, "threads": 1,
                                   "warmup_steps": 0}))
    main(["-q", "detect", "train", str(cfg), "--out", str(tmp_path / "a"), "--json"])
    res = json.loads(capsys.readouterr().out)
    assert res["completed"] and res["steps"] == 1 and res["init"]["kind"] == "random"
    main(["-q", "detect", "train", str(cfg), "--out", str(tmp_path / "b"), "--init", f"osd:{tmp_path / 'a'}",
          "--set", "seed=1", "--json"])
    assert json.loads(capsys.readouterr().out)["init"]["kind"] == "osd"
    main(["-q", "detect", "eval", "-c", f"A={tmp_path / 'a'}", "-c", f"B={tmp_path / 'b'}", "--split", "train",
          "--fuse", "wbf", "--fuse", "nms", "--out", str(tmp_path / "ev"), "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in rows] == ["A", "B", "WBF(A+B)", "NMS(A+B)"]
    assert all(0.0 <= r["ap50"] <= 1.0 and r["num_gt"] == 2 for r in rows)  # one of the 3 boxes is difficult
    assert "ap50_inshore" in rows[0] and "ap50_offshore" in rows[0]
    md = (tmp_path / "ev" / "comparison.md").read_text()
    assert "| WBF(A+B) |" in md and (tmp_path / "ev" / "pr_curves.png").is_file()
    scene = make_scene(tmp_path / "scene.tif", [(20, 30, 44, 40), (100, 60, 120, 90)], size=(160, 120), georef=True)
    main(["-q", "detect", "predict", str(scene), "-c", str(tmp_path / "a"), "-o", str(tmp_path / "s.geojson"),
          "--tile", "64", "--score-thresh", "0.0", "--overview", str(tmp_path / "s.png"), "--json"])
    summary = json.loads(capsys.readouterr().out)
    gj = json.loads((tmp_path / "s.geojson").read_text())
    assert summary["georeferenced"] and gj["properties"]["coordinates"] == "lon/lat EPSG:4326"
    assert len(gj["features"]) == summary["ships"] and (tmp_path / "s.png").is_file()
    assert gj["properties"]["model"]["arch"] == "faster_rcnn"


@pytest.mark.parametrize("args, message", [
    (["detect", "train", "missing.yaml", "--out", "x"], "config file not found"),
    (["detect", "eval", "-c", "nowhere"], "detector checkpoint not found"),
    (["detect", "predict", "nowhere.tif", "-c", "x", "-o", "y.geojson"], "scene not found"),
])
def test_bad_inputs_give_one_line_errors(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(capsys, args)
    assert code == 1 and message in err and err.count("\n") == 1 and err.startswith("saropt: error:")


def test_bad_config_values(tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("model: {arch: yolo}\n")
    code, _, err = _run(capsys, ["detect", "train", str(cfg), "--out", str(tmp_path / "r")])
    assert code == 1 and "unknown detector arch" in err
    cfg.write_text("epochs: 1\n")
    code, _, err = _run(capsys, ["detect", "train", str(cfg), "--out", str(tmp_path / "r"), "--set", "nonsense"])
    assert code == 1 and "KEY=VALUE" in err
    code, _, err = _run(capsys, ["detect", "train", str(cfg), "--out", str(tmp_path / "r"), "--set", "colour=red"])
    assert code == 1 and "unknown detection config keys: colour" in err
    code, _, err = _run(capsys, ["detect", "train", str(cfg), "--out", str(tmp_path / "r")])
    assert code == 1 and "no dataset given" in err
