"""``saropt match train`` / ``saropt match eval`` end to end on a tiny fake saropt dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from saropt.cli.main import cli, main

from .matching_fake import write_fake_saropt

PAIR_KEYS = {"accuracy", "precision", "recall", "f1", "roc_auc", "fpr95"}
LOC_KEYS = {"cmr_1px", "cmr_2px", "cmr_3px", "rmse_px"}
RET_KEYS = {"recall_at_1", "recall_at_5", "recall_at_10"}


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fake_saropt(tmp_path_factory.mktemp("fake"), scene_side=96, patch=40, stride=28)


#: a one-epoch BNN on the fake dataset (test_resnet backbone, 24 px crops at 16 px)
TINY_BNN = (
    "model: bnn\nbackbone: test_resnet\nembedding_dim: 8\ncrop: 24\nsize: 16\nepochs: 1\n"
    "batch_size: 8\nval_pairs: 16\nthreads: 1\n"
)


def _train_tiny(fake: Path, tmp_path: Path, *args: str) -> tuple[Path, str]:
    """Train :data:`TINY_BNN` into ``tmp_path / "run"``; returns the run folder and the command's output."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY_BNN)
    run = tmp_path / "run"
    r = CliRunner().invoke(cli, ["match", "train", str(cfg), "--data", str(fake), "--out", str(run), *args])
    assert r.exit_code == 0, r.output
    return run, r.output


def test_train_then_eval_writes_every_protocol(fake: Path, tmp_path: Path) -> None:
    run, output = _train_tiny(fake, tmp_path, "--json")
    out = json.loads(output)
    assert out["finished"] and out["epochs_done"] == 1 and Path(out["checkpoint"]).is_file()

    metrics = tmp_path / "m.json"
    md = tmp_path / "m.md"
    r = CliRunner().invoke(
        cli,
        [
            "match",
            "eval",
            "--checkpoint",
            str(run),
            "--data",
            str(fake),
            "--split",
            "test",
            "--json",
            str(metrics),
            "--markdown",
            str(md),
            "--baselines",
            "--search-radius",
            "4",
            "--templates",
            "4",
            "--candidates",
            "10",
        ],
    )
    assert r.exit_code == 0, r.output
    m = json.loads(metrics.read_text())
    assert set(m) == {"balanced", "hard", "localisation", "retrieval", "meta"}
    for proto, keys in (
        ("balanced", PAIR_KEYS),
        ("hard", PAIR_KEYS),
        ("localisation", LOC_KEYS),
        ("retrieval", RET_KEYS),
    ):
        assert m[proto]["method"] == "bnn"
        assert keys <= set(m[proto]), proto
        assert set(m[proto]["methods"]) == {"bnn", "ncc", "mi", "cfog"}
        for method in m[proto]["methods"].values():
            for k in keys - {"rmse_px"}:
                assert 0.0 <= method[k] <= 1.0, (proto, k)
    assert m["balanced"]["threshold_source"] == "val"
    assert m["balanced"]["pairs"] == 2 * m["meta"]["patches"]
    assert "default" in m["balanced"] and "default" not in m["balanced"]["methods"]["ncc"]
    assert m["retrieval"]["candidates"] == 10
    # paired bootstrap: an interval around every headline figure, the primary minus each other method
    for proto, key in (("balanced", "accuracy"), ("hard", "roc_auc"), ("localisation", "rmse_px"),
                       ("retrieval", "recall_at_1")):
        for name, method in m[proto]["methods"].items():
            lo, hi = method["ci95"][key]
            assert lo - 1e-9 <= method[key] <= hi + 1e-9, (proto, name)
            if name == "bnn":
                assert "vs_primary" not in method
            else:
                v = method["vs_primary"][key]
                assert v["diff"] == pytest.approx(m[proto][key] - method[key])
                assert v["ci95"][0] <= v["ci95"][1] and v["verdict"] in ("ahead", "level", "behind")
    table = md.read_text()
    assert table.startswith("| method |") and "| bnn |" in table and "| cfog |" in table
    assert "bnn minus each method" in table and "paired bootstrap" in table
    # where retrieval misses come from: counts consistent with recall@1, named in the notes
    for name, f in m["retrieval"]["methods"].items():
        assert f["misses"] == round((1 - f["recall_at_1"]) * f["queries"]), name
        assert 0 <= f["misses_same_scene"] <= f["misses"]
        assert f["recall_at_1_other_scenes"] >= f["recall_at_1"] - 1e-12
        assert f"{name} {f['misses_same_scene']} of {f['misses']}" in table

    # --split all: calibration on the evaluation pairs is flagged
    r = CliRunner().invoke(
        cli,
        [
            "match",
            "eval",
            "-k",
            str(run / "best.pt"),
            "--data",
            str(fake),
            "--split",
            "all",
            "--protocol",
            "balanced",
            "--json",
            str(metrics),
        ],
    )
    assert r.exit_code == 0, r.output
    m = json.loads(metrics.read_text())
    assert set(m) == {"balanced", "meta"} and m["balanced"]["threshold_source"] == "eval"
    assert any("trained or validated" in w or "optimistic" in w for w in m["meta"]["warnings"])
    assert m["meta"]["tta"] is False
    plain = (m["balanced"]["roc_auc"], m["balanced"]["threshold"])

    # --tta: the same pairs scored under the 8 flips/rotations; recorded in meta and in the table's notes
    r = CliRunner().invoke(
        cli,
        ["match", "eval", "-k", str(run / "best.pt"), "--data", str(fake), "--split", "all", "--protocol",
         "balanced", "--tta", "--json", str(metrics)],
    )
    assert r.exit_code == 0, r.output
    m = json.loads(metrics.read_text())
    assert m["meta"]["tta"] is True and "(TTA)" in r.output
    assert m["balanced"]["pairs"] > 0 and (m["balanced"]["roc_auc"], m["balanced"]["threshold"]) != plain

    # --ensemble of one checkpoint twice: one method whose scores equal the single model's
    r = CliRunner().invoke(
        cli,
        ["match", "eval", "-k", str(run / "best.pt"), "-k", str(run / "best.pt"), "--ensemble", "--data",
         str(fake), "--split", "all", "--protocol", "balanced", "--json", str(metrics)],
    )
    assert r.exit_code == 0, r.output
    m = json.loads(metrics.read_text())
    assert m["balanced"]["method"] == "bnn-x2" and set(m["balanced"]["methods"]) == {"bnn-x2"}
    assert m["meta"]["ensemble"] == 2 and "(ensemble)" in r.output
    assert (m["balanced"]["roc_auc"], m["balanced"]["threshold"]) == pytest.approx(plain)


def test_positional_and_option_config_forms_agree(fake: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "backbone: test_resnet\nembedding_dim: 4\ncrop: 24\nsize: 16\nepochs: 1\nbatch_size: 8\n"
        "val_split: ''\n"
    )
    r = CliRunner().invoke(
        cli,
        [
            "match",
            "train",
            "--config",
            str(cfg),
            "--data",
            str(fake),
            "--out",
            str(tmp_path / "r"),
            "--set",
            "seed=3",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["best"] == {}  # no validation split
    assert "seed: 3" in (tmp_path / "r" / "config.yaml").read_text()


def test_baselines_only_eval(fake: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(
        cli,
        [
            "match",
            "eval",
            "--data",
            str(fake),
            "--baseline",
            "ncc",
            "--crop",
            "32",
            "--size",
            "16",
            "--protocol",
            "retrieval",
            "--candidates",
            "5",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "| ncc |" in r.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["match", "eval", "--data", "{fake}"], "nothing to evaluate"),
        (["match", "eval", "--data", "{tmp}/missing", "--baselines", "--crop", "8"], "not found"),
        (["match", "eval", "-k", "{tmp}", "--data", "{fake}"], "no best.pt"),
        (
            ["match", "train", "--data", "{fake}", "--out", "{tmp}/o", "--set", "epochz=1"],
            "unknown training config",
        ),
        (
            ["match", "train", "{tmp}/nope.yaml", "--data", "{fake}", "--out", "{tmp}/o"],
            "config file not found",
        ),
        (
            ["match", "train", "--data", "{fake}", "--out", "{tmp}/o", "--set", "backbone=nonet"],
            "unknown backbone",
        ),
    ],
)
def test_bad_input_is_one_line_and_nonzero(
    fake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    argv = [a.format(fake=fake, tmp=tmp_path) for a in args]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("saropt: error:") and message in err and "\n" not in err


def test_baseline_view_options_apply_beside_a_checkpoint(fake: Path, tmp_path: Path) -> None:
    """--crop/--size set the training-free baselines' view while each checkpoint keeps its own."""
    run, _ = _train_tiny(fake, tmp_path)

    def figures(name: str, *args: str) -> dict[str, tuple[float, float]]:
        """(balanced ROC-AUC, retrieval mean rank) per method."""
        out = tmp_path / f"{name}.json"
        r = CliRunner().invoke(
            cli,
            ["match", "eval", "--data", str(fake), "--baseline", "mi", "--protocol", "balanced"]
            + ["--protocol", "retrieval", "--candidates", "8", "--bootstrap", "0", "--json", str(out), *args],
        )
        assert r.exit_code == 0, r.output
        m = json.loads(out.read_text())
        return {
            k: (v["roc_auc"], m["retrieval"]["methods"][k]["mean_rank"])
            for k, v in m["balanced"]["methods"].items()
        }

    own_view = figures("own", "--checkpoint", str(run))  # baselines see the checkpoint's view: 24 px resized to 16
    native = figures("native", "--checkpoint", str(run), "--crop", "40")  # baselines see the whole 40 px patch
    alone = figures("alone", "--crop", "40")
    assert native["mi"] == alone["mi"]
    assert native["mi"] != own_view["mi"]
    assert native["bnn"] == own_view["bnn"]


def test_cli_measures_are_the_baselines() -> None:
    from saropt.cli.match import MEASURES
    from saropt.matching.baselines import BASELINES

    assert MEASURES == BASELINES  # --baseline and --refine offer exactly the measures evaluate() knows
