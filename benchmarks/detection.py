"""Benchmark: SAR ship detection on the SSDD test split with random, OSM and OSD initialisation and their fusion.

Runs (skipping any run folder that already holds ``final.pt``, resuming any that holds ``last.pt``)::

    OUT/osd_pretrain   detector trained on optical ships (DOTA layout, grey chips)   configs/detect/dota-osd-cpu.yaml
    OUT/random         SSDD detector, random initialisation                           configs/detect/ssdd-cpu.yaml
    OUT/osm            SSDD detector, backbone = SAR branch of a BNN (--bnn)          init osm:BNN
    OUT/osd            SSDD detector initialised from OUT/osd_pretrain                init osd:OUT/osd_pretrain
    OUT/<run>_s<N>     the same with training seed N (--seeds 0 1 ...)

then predicts the SSDD test split with each detector and writes, per seed, ``OUT/eval/seed<N>/comparison.{md,json}``
and ``pr_curves.png`` (random, OSM, OSD, WBF(OSM, OSD), and NMS / soft-NMS of (OSM, OSD) for comparison), and
``OUT/eval/summary.{md,json}`` with the AP@0.5 of every seed and the means. Training and prediction run in
subprocesses (``saropt detect train`` / ``eval``), concurrently with ``--parallel``.

    nice -n 10 python benchmarks/detection.py --bnn MATCHING_RUN --out /tmp/det-bench --parallel --seeds 0 1 \
        --set epochs=1 --set max_steps=100 --set threads=1

Prints the tables and the time each stage took, with the hardware it ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SAROPT_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _train_cmd(config: Path, out: Path, sets: list[str], init: str | None, data: Path) -> list[str]:
    cmd = [sys.executable, "-m", "saropt.cli.main", "-q", "detect", "train", str(config), "--out", str(out),
           "--data", str(data), "--json"]
    if init:
        cmd += ["--init", init]
    for s in sets:
        cmd += ["--set", s]
    return cmd


def _run(cmds: dict[str, list[str]], out: Path, parallel: bool) -> dict[str, float]:
    """Run training commands (skipping finished runs); return wall seconds per run."""
    todo = {k: c for k, c in cmds.items() if not (out / k / "final.pt").is_file()}
    secs = {k: 0.0 for k in cmds if k not in todo}
    procs: dict[str, tuple[subprocess.Popen[bytes], float]] = {}
    for name, cmd in todo.items():
        log = open(out / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        print(f"[train] {name}: {' '.join(cmd[3:])}", flush=True)
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        procs[name] = (p, time.monotonic())
        if not parallel:
            p.wait()
            secs[name] = time.monotonic() - procs[name][1]
            if p.returncode:
                sys.exit(f"training {name} failed; see {out / (name + '.log')}")
    for name, (p, t0) in procs.items():
        if parallel:
            p.wait()
            secs[name] = time.monotonic() - t0
            if p.returncode:
                sys.exit(f"training {name} failed; see {out / (name + '.log')}")
    return secs


def _run_plain(cmds: dict[str, list[str]], out: Path, parallel: bool) -> dict[str, float]:
    """Run commands (all of them), concurrently with ``parallel``; return wall seconds per command."""
    secs: dict[str, float] = {}
    procs = {}
    for name, cmd in cmds.items():
        log = open(out / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        print(f"[run] {name}", flush=True)
        procs[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT), time.monotonic())
        if not parallel:
            procs[name][0].wait()
    for name, (p, t0) in procs.items():
        p.wait()
        secs[name] = time.monotonic() - t0
        if p.returncode:
            sys.exit(f"{name} failed; see {out / (name + '.log')}")
    return secs


def _run_dir(key: str, seed: int) -> str:
    return key if seed == 0 else f"{key}_s{seed}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ssdd", type=Path, default=DATA / "ships" / "ssdd" / "VOC2007")
    ap.add_argument("--dota", type=Path, default=DATA / "ships" / "dota-sample")
    ap.add_argument("--bnn", help="matching run folder or checkpoint for OSM (omit: OSM reported as pending)")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "detect" / "ssdd-cpu.yaml")
    ap.add_argument("--osd-config", type=Path, default=ROOT / "configs" / "detect" / "dota-osd-cpu.yaml")
    ap.add_argument("--out", type=Path, default=Path("/tmp/saropt-detect-bench"))
    ap.add_argument("--set", dest="sets", action="append", default=[], help="override for the SSDD runs")
    ap.add_argument("--osd-set", dest="osd_sets", action="append", default=[], help="override for OSD pretraining")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds of the SSDD detectors")
    ap.add_argument("--parallel", action="store_true", help="train / predict the SSDD detectors concurrently")
    ap.add_argument("--iou-thr", type=float, default=0.55, help="fusion IoU threshold")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    if not (args.ssdd / "Annotations").is_dir():
        sys.exit(f"SSDD not found at {args.ssdd}")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    t_all = time.monotonic()
    times = {}
    times.update(_run({"osd_pretrain": _train_cmd(args.osd_config, out / "osd_pretrain", args.osd_sets, None,
                                                  args.dota)}, out, False))
    inits = {"random": "random", "osd": f"osd:{out / 'osd_pretrain'}"}
    if args.bnn:
        inits["osm"] = f"osm:{args.bnn}"
    ssdd = {}
    for seed in args.seeds:
        sets = args.sets + ([f"seed={seed}"] if seed else [])
        for key, init in inits.items():
            d = _run_dir(key, seed)
            ssdd[d] = _train_cmd(args.config, out / d, sets, init, args.ssdd)
    times.update(_run(ssdd, out, args.parallel))

    from saropt.detection.datasets import read_records
    from saropt.detection.evaluate import compare, load_predictions
    from saropt.detection.fusion import fuse_all
    from saropt.detection.train import resolve_device

    records = read_records("voc", args.ssdd, "test")
    dev = resolve_device(args.device)
    names = {"random": "random", "osm": "OSM", "osd": "OSD"}
    # each detector predicts the test split in its own process (concurrently with --parallel)
    evals = {}
    for seed in args.seeds:
        for key, label in names.items():
            d = _run_dir(key, seed)
            final = out / d / "final.pt"
            cache = out / f"pred_{d}" / "predictions" / f"{label}.json"
            if final.is_file() and not (cache.is_file() and cache.stat().st_mtime > final.stat().st_mtime):
                evals[f"predict_{d}"] = [sys.executable, "-m", "saropt.cli.main", "-q", "detect", "eval", "-c",
                                         f"{label}={out / d}", "--data", str(args.ssdd), "--split", "test",
                                         "--device", args.device, "--out", str(out / f"pred_{d}"), "--json"]
    times.update(_run_plain(evals, out, args.parallel))
    hw = {"machine": platform.machine(), "cpus": os.cpu_count(), "device": str(dev), "python": platform.python_version()}
    try:
        import torch

        hw["torch"] = torch.__version__
        if dev.type == "cuda":
            hw["gpu"] = torch.cuda.get_device_name(dev)
    except ImportError:  # pragma: no cover
        pass
    sizes = [(r.width, r.height) for r in records]
    per_seed: dict[int, dict[str, dict]] = {}
    for seed in args.seeds:
        preds = {label: load_predictions(out / f"pred_{_run_dir(key, seed)}" / "predictions" / f"{label}.json", records)
                 for key, label in names.items() if (out / _run_dir(key, seed) / "final.pt").is_file()}
        methods = dict(preds)
        if "OSM" in preds and "OSD" in preds:
            pair = [preds["OSM"], preds["OSD"]]
            for f, label in (("wbf", "WBF(OSM, OSD)"), ("nms", "NMS(OSM, OSD)"), ("soft_nms", "soft-NMS(OSM, OSD)")):
                methods[label] = fuse_all(pair, sizes, method=f, iou_thr=args.iou_thr)
        cfgs = {k: __import__("yaml").safe_load((out / _run_dir(k, seed) / "config.yaml").read_text())
                for k in names if (out / _run_dir(k, seed) / "config.yaml").is_file()}
        table = compare(methods, records, out / "eval" / f"seed{seed}", title=f"SSDD test split (232 chips), seed {seed}",
                        extra={"hardware": hw, "train_seconds": times, "configs": cfgs, "bnn": args.bnn})
        print(table.markdown)
        per_seed[seed] = {r["method"]: r for r in table.rows}
    methods_order = list(per_seed[args.seeds[0]])
    lines = ["| method | " + " | ".join(f"AP@0.5 seed {s}" for s in args.seeds) + " | mean AP@0.5 | mean COCO AP |",
             "|---|" + "---|" * (len(args.seeds) + 2)]
    summary = []
    for m in methods_order:
        aps = [per_seed[s][m]["ap50"] for s in args.seeds if m in per_seed[s]]
        cocos = [per_seed[s][m]["coco"]["ap"] for s in args.seeds if m in per_seed[s]]
        summary.append({"method": m, "ap50": aps, "mean_ap50": float(np.mean(aps)), "mean_coco_ap": float(np.mean(cocos))})
        lines.append(f"| {m} | " + " | ".join(f"{a:.4f}" for a in aps) + f" | {np.mean(aps):.4f} | {np.mean(cocos):.4f} |")
    md = "\n".join(lines) + "\n"
    (out / "eval").mkdir(parents=True, exist_ok=True)
    (out / "eval" / "summary.md").write_text(md)
    (out / "eval" / "summary.json").write_text(json.dumps({"rows": summary, "hardware": hw, "seeds": args.seeds,
                                                           "train_seconds": times}, indent=2))
    print(md)
    if "OSM" not in per_seed[args.seeds[0]]:
        print("OSM: pending (no --bnn matching checkpoint given)")
    print("hardware:", json.dumps(hw))
    print("wall seconds:", json.dumps({k: round(v) for k, v in times.items()}),
          f"total {time.monotonic() - t_all:.0f}")


if __name__ == "__main__":
    main()
