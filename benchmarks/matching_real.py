"""The full CPU matching benchmark on real Sentinel-1/2 pairs: build, train BNN and pseudo-siamese, evaluate
all.

Steps (each resumable: run it again after an interruption and finished steps are skipped):

1. ``saropt build --aligned --split-method scene`` of ``../shared/data/pairs/s1s2-1024`` (41 pairs, 1024 px)
   into 256 px patches at 50% overlap (quality filters on): whole images per split, never one image in two
   splits;
2. ``configs/match/bnn-cpu.yaml`` and ``configs/match/pseudo-siamese-cpu.yaml`` trained on its ``train`` split
   (validation on ``val``);
3. every protocol (balanced, hard, localisation, retrieval) on the held-out ``test`` images for both models
   and the training-free NCC, MI and CFOG measures, thresholds calibrated on ``val``: one markdown table and
   one JSON.

Usage::

    nice -n 10 python benchmarks/matching_real.py --work /tmp/saropt-match   # about an hour on 2 busy cores
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, required=True, help="work folder (dataset, runs, metrics)")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "pairs" / "s1s2-1024")
    p.add_argument("--overlap", type=float, default=0.5)
    p.add_argument("--templates", type=int, default=100, help="localisation templates")
    p.add_argument("--epochs", type=int, default=0, help="override the recipes' epochs (0 = keep)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from click.testing import CliRunner

    from saropt.cli.main import cli
    from saropt.matching.config import load_config
    from saropt.matching.evaluate import evaluate
    from saropt.matching.protocols import ProtocolSettings
    from saropt.matching.train import train

    ds = args.work / "s1s2-256"
    if not (ds / "index.parquet").exists():
        t = time.monotonic()
        r = CliRunner().invoke(
            cli,
            [
                "build",
                "--aligned",
                "--sar",
                str(args.data / "sar"),
                "--optical",
                str(args.data / "opt"),
                "--out",
                str(ds),
                "--patch-size",
                "256",
                "--overlap",
                str(args.overlap),
                "--split-method",
                "scene",
            ],
        )
        if r.exit_code != 0:
            raise SystemExit(r.output)
        print(f"built {ds} in {time.monotonic() - t:.0f} s")

    runs = []
    for name in ("bnn-cpu", "pseudo-siamese-cpu"):
        over = {"data": str(ds)}
        if args.epochs:
            over["epochs"] = args.epochs
        cfg = load_config(ROOT / "configs" / "match" / f"{name}.yaml", over)
        t = time.monotonic()
        res = train(cfg, args.work / name)
        secs = sum(h["seconds"] for h in res.history)
        print(
            f"{name}: {res.epochs_done} epochs, {secs / 60:.1f} min of training "
            f"(this call {time.monotonic() - t:.0f} s), best validation {res.best}"
        )
        runs.append(args.work / name)

    rep = evaluate(
        ds,
        checkpoints=runs,
        split="test",
        baselines=("ncc", "mi", "cfog"),
        settings=ProtocolSettings(max_templates=args.templates),
    )
    rep.write_json(args.work / "metrics.json")
    rep.write_markdown(args.work / "metrics.md")
    print(rep.to_markdown())


if __name__ == "__main__":
    main()
