"""The seamline filter on real scenes: false alarms as they are, detection of injected mosaicking seams.

    python benchmarks/seamline_real.py                      # every real scene under ../shared/data (~2 min)
    python benchmarks/seamline_real.py --s1s2 10 --trials 2 # fewer Sentinel scenes and seams
    python benchmarks/seamline_real.py --alone              # also each patch judged without context

No real scene here has its seamlines marked, so :mod:`saropt.quality.seam_trials` adds a straight brightness or
colour step to the registered optical image of each real scene (random line, sign and kind) and scores the
patches exactly as a build does (8-bit mapping, registration, the whole scene as the seamline context):

- GaoFen-3 + Maxar pan, Omaha (1 m, registered by geocoding), 256 px patches at stride 64;
- CFOG's urban and rural pairs (about 1 m, registered by their check points), 256 px patches at stride 64;
- the 41 Sentinel-1/2 pairs of ``pairs/s1s2-1024`` (10 m, aligned), 256 px patches at stride 64.

Printed per group: the clean patches' false-alarm rate at several ``seamline_max`` thresholds (25 is the
default), and for each seam offset the detection rate at the same thresholds and the ROC area (seam patches
against clean ones). ``--png`` draws the ROC curves.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

THRESHOLDS = (15.0, 20.0, 25.0, 30.0)


def _scene_arrays(scenes: list[dict], patch: int) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """Whole SAR scenes and their registered optical, as a build reads them (one entry per scene pair)."""
    from saropt.dataset.config import config_from_dict
    from saropt.dataset.plan import resolve_plan
    from saropt.dataset.units import read_region

    plan = resolve_plan(config_from_dict({"scenes": scenes, "patch_size": patch, "stride": patch}))
    out = []
    for i, spec in enumerate(scenes):
        _, a = read_region(plan, i)
        out.append((spec["id"], a.sar_u8, a.opt_u8, a.valid))
    return out


def groups(data: Path, n_s1s2: int) -> dict[str, list[dict]]:
    """Scene configurations per group (missing data is left out)."""
    g: dict[str, list[dict]] = {}
    omaha = data / "scenes" / "omaha-gf3-worldview"
    sar, opt = sorted(omaha.glob("GF3_*.tiff")), sorted(omaha.glob("18APR24*.tiff"))
    if sar and opt:
        g["GF-3 + Maxar, Omaha, 1 m"] = [
            {"id": "omaha", "sar": str(sar[0]), "optical": str(opt[0]), "sar_nodata": 0, "optical_nodata": 0}
        ]
    for name, s, o, cp in [
        ("cfog-urban", "SAR_sen.png", "optical_ref.png", "OpticaltoSAR_CP.txt"),
        ("cfog-rural", "SAR1_sen.tif", "visible1_ref.tif", "visibleToSAR1_CP.txt"),
    ]:
        d = data / "scenes" / name
        if (d / cp).is_file():
            g[f"CFOG {name.split('-')[1]}, ~1 m"] = [
                {
                    "id": name,
                    "sar": str(d / s),
                    "optical": str(d / o),
                    "tiepoints": str(d / cp),
                    "tiepoints_format": "checkpoints",
                    "tiepoints_origin": 1,
                }
            ]
    s1s2 = data / "pairs" / "s1s2-1024"
    names = sorted(p.name for p in (s1s2 / "opt").glob("*.png"))[:n_s1s2]
    if names:
        g[f"Sentinel-1/2, 10 m ({len(names)} scenes)"] = [
            {
                "id": f"s1s2_{Path(n).stem}",
                "sar": str(s1s2 / "sar" / n),
                "optical": str(s1s2 / "opt" / n),
                "tiepoints": "identity",
            }
            for n in names
        ]
    return g


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--s1s2", type=int, default=41, help="Sentinel-1/2 scenes to use [41]")
    ap.add_argument("--trials", type=int, default=3, help="seams per scene and offset [3]")
    ap.add_argument("--offsets", default="30,40,60", help="seam offsets in grey levels [30,40,60]")
    ap.add_argument("--stride", type=int, default=64)
    ap.add_argument("--alone", action="store_true", help="also judge each patch without context")
    ap.add_argument("--png", type=Path, default=None, help="write ROC curves here")
    args = ap.parse_args()

    from saropt.quality.seam_trials import SeamTrials, seam_trials

    if not args.data.is_dir():
        sys.exit(f"no real data at {args.data}")
    offsets = [float(v) for v in args.offsets.split(",")]
    modes = [True, False] if args.alone else [True]
    results: dict[tuple[str, bool], SeamTrials] = {}
    t0 = time.perf_counter()
    for name, scenes in groups(args.data, args.s1s2).items():
        for i, (sid, sar, opt, valid) in enumerate(_scene_arrays(scenes, 256)):
            for ctx in modes:
                r = seam_trials(
                    sar,
                    opt,
                    valid,
                    stride=args.stride,
                    offsets=offsets,
                    trials=args.trials,
                    seed=i,
                    context=ctx,
                )
                results.setdefault((name, ctx), SeamTrials()).extend(r)
            print(
                f"\r{name}: {i + 1}/{len(scenes)} scenes, {time.perf_counter() - t0:.0f} s",
                end="",
                file=sys.stderr,
            )
        print(file=sys.stderr)

    thr = "/".join(f"{t:g}" for t in THRESHOLDS)
    print(
        f"\nseamline filter on real scenes, {args.trials} injected seams per scene and offset "
        f"(brightness or colour, random line and sign), 256 px patches, stride {args.stride}"
    )
    print(f"rates at seamline_max = {thr} (default 25)\n")
    head = "| group | context | clean patches | false alarms |"
    for off in offsets:
        head += f" detected, +-{off:g} | AUC +-{off:g} |"
    print(head)
    print("|---|---|---:|---:|" + "---:|---:|" * len(offsets))
    for (name, ctx), r in results.items():
        n = int(np.isfinite(r.clean).sum())
        row = (
            f"| {name} | {'yes' if ctx else 'no'} | {n} | "
            + "/".join(f"{r.false_alarm(t):.3f}" for t in THRESHOLDS)
            + " |"
        )
        for off in offsets:
            det = "/".join(f"{r.detection(off, t):.2f}" for t in THRESHOLDS)
            row += f" {det} (n={int(np.isfinite(r.seam.get(off, np.zeros(0))).sum())}) | {r.auc(off):.3f} |"
        print(row)
    print(f"\n{time.perf_counter() - t0:.0f} s")

    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(offsets), figsize=(4.6 * len(offsets), 5.2), squeeze=False)
        colours = {name: f"C{i}" for i, name in enumerate(dict.fromkeys(n for n, _ in results))}
        for ax, off in zip(axes[0], offsets):
            for (name, ctx), r in results.items():
                c = r.clean[np.isfinite(r.clean)]
                s = r.seam.get(off, np.zeros(0))
                s = s[np.isfinite(s)]
                ts = np.unique(np.concatenate([c, s, [np.inf]]))[::-1]
                fa = [np.mean(c > t) for t in ts]
                dt = [np.mean(s > t) for t in ts]
                label = f"{name}{'' if ctx else ', each patch alone'}"
                ax.plot(fa, dt, "-" if ctx else ":", color=colours[name], label=label)
                ax.plot([r.false_alarm(25.0)], [r.detection(off, 25.0)], "o", color=colours[name])
            ax.set_xscale("symlog", linthresh=0.01)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_xlabel("false-alarm rate on the clean scenes")
            ax.set_ylabel("detection rate")
            ax.set_title(f"seams of +-{off:g} grey levels")
            ax.grid(alpha=0.3)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
        fig.suptitle(
            "seamline filter on real scenes with injected seams (dots: seamline_max 25, the default)"
        )
        fig.tight_layout(rect=(0, 0.14, 1, 1))
        args.png.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.png, dpi=110)
        print(f"ROC curves: {args.png}")


if __name__ == "__main__":
    main()
