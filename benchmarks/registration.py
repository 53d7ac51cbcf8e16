"""Automatic SAR-optical registration against the tools users would try, on real data, in one run.

    nice -n 10 python benchmarks/registration.py [--data ../shared/data] [--methods auto,sift,orb,ncc,phasecorr,arosics]
                                                 [--srif 1-100] [--rotated 100] [--big] [--threads N] [--out bench.json]

Datasets (real imagery, none made here):

* SRIF optical-SAR pairs 1-100 (``registration/srif-optical-sar``). Two truths are scored:
  - ``gt file``: the published ``gt_i.txt`` as documented (``cv2.warpAffine(opt, M, (256, 256))``). They do not
    fit the images: they are pure rotations about the centre of a 256-pixel frame, while the optical images are
    155-511 pixels (upstream issues LJY-RS/SRIF#2 and #5: "the gt of the Optical-SAR group are all wrong").
  - ``derived``: the geometry the files encode made consistent with the images: the optical covers the SAR
    patch's footprint resized to its own size, the SAR was rotated about its centre by the angle measured from
    its black wedges (:func:`saropt.registration.auto.evaluate.srif_truth`). Its own error is about 0.5-1
    degree of rotation (1-2 px at the patch edge) and any misregistration of the source pair, so success is
    reported at 3 px (the brief's threshold) and at 10 px (right versus wrong).
* ``cfog-rotated``: SRIF's protocol with exact truth: 256-pixel SAR patches of the CFOG urban and rural pairs
  (brought onto one grid by the affine of their published check points, ~0.8 px), rotated by 1-90 degrees about
  their centre (black wedges), with the optical footprint shifted by up to 24 px and resized to 155-511 px, both
  JPEG-compressed (:func:`saropt.registration.auto.evaluate.rotated_case`).
* CFOG urban and rural whole pairs: RMSE at the published check points (``origin=1``; they carry ~0.8 px of
  their own error: an affine fitted to them leaves 0.90 / 0.65 px).
* ``--big``: a synthetic 8000 x 8000 1 m scene pair from ``saropt.synthetic.make_scene_pair``: time, reliable
  tie points and their spread.

Metric: RMSE of the estimated transform against the truth over a grid of SAR pixels (every 8 px); success when
it is <= 3 px. Times are wall seconds per pair with the load of the machine at the time (printed), and CPU
seconds (all threads; ``auto`` uses one thread per core, at most 4, or ``--threads``).

Baselines: OpenCV SIFT + RANSAC and ORB + RANSAC (ratio test 0.8, affine RANSAC at 3 px); intensity NCC template
matching (optical templates at the footprint scale, no rotation search, RANSAC affine); phase correlation
(``cv2.phaseCorrelate`` of the SAR and the optical resized to the footprint scale: translation only); arosics
``COREG`` (global shift) from a separate virtual environment (``/tmp/arosics-venv``), when it installs.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from saropt.errors import SaroptError
from saropt.registration.auto import AutoConfig, register
from saropt.registration.auto.evaluate import rotated_case, srif_truth, transform_rmse
from saropt.registration.auto.sources import border_nodata_mask

AROSICS_PY = Path("/tmp/arosics-venv/bin/python")


# ------------------------------------------------------------------------------------------------- baselines


def _grey(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img


def _u8(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img, dtype=np.float32)
    lo, hi = np.percentile(a, [1, 99.5])
    return np.clip((a - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)


def _affine_from_matches(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    if len(src) < 3:
        return None
    m, inl = cv2.estimateAffine2D(
        src.astype(np.float32),
        dst.astype(np.float32),
        method=cv2.RANSAC,
        ransacReprojThreshold=3.0,
        maxIters=2000,
        confidence=0.999,
    )
    if m is None or inl is None or int(inl.sum()) < 6:
        return None
    return np.vstack([m, [0.0, 0.0, 1.0]])


def _features(detector: cv2.Feature2D, norm: int, sar: np.ndarray, opt: np.ndarray) -> np.ndarray | None:
    s = _u8(sar)
    mask = border_nodata_mask(sar.astype(np.float32), 0.0).astype(np.uint8) * 255
    k1, d1 = detector.detectAndCompute(_u8(opt), None)
    k2, d2 = detector.detectAndCompute(s, mask)
    if d1 is None or d2 is None or len(k1) < 3 or len(k2) < 3:
        return None
    pairs = cv2.BFMatcher(norm).knnMatch(d1, d2, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
    src = np.array([k1[g.queryIdx].pt for g in good])
    dst = np.array([k2[g.trainIdx].pt for g in good])
    # OpenCV keypoints use pixel-centre coordinates like saropt
    return _affine_from_matches(src.reshape(-1, 2), dst.reshape(-1, 2))


def sift(sar: np.ndarray, opt: np.ndarray) -> np.ndarray | None:
    return _features(cv2.SIFT_create(nfeatures=4000), cv2.NORM_L2, sar, opt)


def orb(sar: np.ndarray, opt: np.ndarray) -> np.ndarray | None:
    return _features(cv2.ORB_create(nfeatures=4000), cv2.NORM_HAMMING, sar, opt)


def _footprint_scale(sar: np.ndarray, opt: np.ndarray) -> float:
    return float(np.sqrt(sar.shape[0] * sar.shape[1] / float(opt.shape[0] * opt.shape[1])))


def ncc(sar: np.ndarray, opt: np.ndarray, template: int = 48) -> np.ndarray | None:
    """Intensity NCC template matching at the footprint scale (no rotation search), RANSAC affine."""
    k = _footprint_scale(sar, opt)
    o = cv2.resize(_grey(opt).astype(np.float32), None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    s = sar.astype(np.float32)
    src, dst = [], []
    h, w = o.shape
    for y in range(template, h - template, template):
        for x in range(template, w - template, template):
            t = o[y - template // 2 : y + template // 2, x - template // 2 : x + template // 2]
            if t.std() < 1.0:
                continue
            res = cv2.matchTemplate(s, t, cv2.TM_CCOEFF_NORMED)
            _, val, _, loc = cv2.minMaxLoc(res)
            if val < 0.3:
                continue
            src.append(((x + 0.5) / k - 0.5, (y + 0.5) / k - 0.5))
            dst.append((loc[0] + template // 2, loc[1] + template // 2))
    return _affine_from_matches(np.array(src).reshape(-1, 2), np.array(dst).reshape(-1, 2))


def phasecorr(sar: np.ndarray, opt: np.ndarray) -> np.ndarray | None:
    """cv2.phaseCorrelate of the SAR and the optical resized to the SAR's size: a translation."""
    h, w = sar.shape
    o = cv2.resize(_grey(opt).astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    win = cv2.createHanningWindow((w, h), cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(o, sar.astype(np.float32), win)
    sx, sy = w / opt.shape[1], h / opt.shape[0]
    return np.array([[sx, 0, 0.5 * sx - 0.5 + dx], [0, sy, 0.5 * sy - 0.5 + dy], [0, 0, 1.0]])


_AROSICS_SCRIPT = r"""
import json, sys, numpy as np
from arosics import COREG
from geoarray import GeoArray
a = json.load(open(sys.argv[1]))
# a map grid whose top-left corner is not (0, 0): py_tools_ds reads (0, 1, 0, 0, 0, -1) as "no geotransform"
x0, y0 = 500000.0, 4000000.0
ref = GeoArray(np.load(a["sar"]), geotransform=(x0, 1.0, 0.0, y0, 0.0, -1.0), projection="EPSG:32633")
k = a["pix"]
tgt = GeoArray(np.load(a["opt"]), geotransform=(x0, k, 0.0, y0, 0.0, -k), projection="EPSG:32633")
try:
    cr = COREG(ref, tgt, q=True, ws=(128, 128), max_iter=5, max_shift=100, nodata=(0, 0))
    cr.calculate_spatial_shifts()
    info = cr.coreg_info
    print(json.dumps({"ok": bool(info["success"]), "x": info["corrected_shifts_px"]["x"],
                      "y": info["corrected_shifts_px"]["y"]}))
except Exception as exc:
    print(json.dumps({"ok": False, "error": str(exc)[:200]}))
"""


def arosics_available() -> tuple[bool, str]:
    if not AROSICS_PY.exists():
        return (
            False,
            "no /tmp/arosics-venv (create it: python3 -m venv /tmp/arosics-venv && .../pip install arosics)",
        )
    r = subprocess.run(
        [str(AROSICS_PY), "-c", "import arosics; print(arosics.__version__)"],
        check=False,
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        return False, "arosics does not import: " + (r.stderr.strip().splitlines() or ["?"])[-1][:200]
    return True, "arosics " + r.stdout.strip()


def arosics(sar: np.ndarray, opt: np.ndarray) -> np.ndarray | None:
    """arosics COREG (global X/Y shift) with both images given a map grid of equal footprint."""
    k = _footprint_scale(sar, opt)
    with tempfile.TemporaryDirectory() as d:
        np.save(f"{d}/sar.npy", sar.astype(np.float32))
        np.save(f"{d}/opt.npy", _grey(opt).astype(np.float32))
        Path(f"{d}/a.json").write_text(
            json.dumps({"sar": f"{d}/sar.npy", "opt": f"{d}/opt.npy", "pix": 1.0 / k})
        )
        Path(f"{d}/run.py").write_text(_AROSICS_SCRIPT)
        r = subprocess.run(
            [str(AROSICS_PY), f"{d}/run.py", f"{d}/a.json"],
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
        )
    try:
        res = json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return None
    if not res.get("ok"):
        return None
    # shift in reference (SAR) pixels of the target's position: target pixel q lands at q * k - shift
    sx, sy = float(res["x"]), float(res["y"])
    return np.array([[k, 0, 0.5 * k - 0.5 - sx], [0, k, 0.5 * k - 0.5 + sy], [0, 0, 1.0]])


def auto(sar: np.ndarray, opt: np.ndarray, config: AutoConfig | None = None) -> np.ndarray | None:
    try:
        reg = register(sar, opt, config=config)
    except SaroptError:
        return None
    return np.asarray(reg.transform.matrix)


METHODS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray | None]] = {
    "auto": auto,
    "sift": sift,
    "orb": orb,
    "ncc": ncc,
    "phasecorr": phasecorr,
    "arosics": arosics,
}

# ---------------------------------------------------------------------------------------------------- data


@dataclass
class Case:
    name: str
    sar: np.ndarray
    opt: np.ndarray
    truths: dict[str, np.ndarray]


def _read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FileNotFoundError(path)
    if img.ndim == 3:
        img = img[:, :, ::-1]  # RGB
    return img


def srif_cases(data: Path, ids: list[int]) -> list[Case]:
    d = data / "registration" / "srif-optical-sar"
    out = []
    for i in ids:
        opt = _read(d / f"pair{i}_1.jpg")
        sar = _read(d / f"pair{i}_2.jpg")
        opt = _grey(opt)
        sar = _grey(sar)
        gt = np.vstack([np.loadtxt(d / f"gt_{i}.txt"), [0, 0, 1]])
        derived, _, _ = srif_truth(sar, opt.shape)
        out.append(Case(f"srif{i}", sar, opt, {"gt file": gt, "derived": derived}))
    return out


def cfog_pair(data: Path, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from saropt.io.tiepoints import read_tiepoints
    from saropt.registration.fit import fit_registration

    files = {
        "urban": ("cfog-urban/SAR_sen.png", "cfog-urban/optical_ref.png", "cfog-urban/OpticaltoSAR_CP.txt"),
        "rural": (
            "cfog-rural/SAR1_sen.tif",
            "cfog-rural/visible1_ref.tif",
            "cfog-rural/visibleToSAR1_CP.txt",
        ),
    }[name]
    d = data / "scenes"
    sar = _grey(_read(d / files[0]))
    opt = _read(d / files[1])
    tp = read_tiepoints(d / files[2], fmt="checkpoints", origin=1)
    base = fit_registration(tp, "affine", robust=False).transform.matrix
    return sar, opt, np.asarray(base), np.column_stack([tp.opt_xy, tp.sar_xy])


def rotated_cases(data: Path, n: int) -> list[Case]:
    pairs = {k: cfog_pair(data, k) for k in ("urban", "rural")}
    out = []
    for k in range(n):
        name = "urban" if k % 2 == 0 else "rural"
        sar, opt, base, _ = pairs[name]
        c = rotated_case(sar, opt, np.random.default_rng(k), base=base)
        out.append(Case(f"cfogrot_{name}{k}", c.sar, c.opt, {"exact": c.opt_to_sar}))
    return out


# ------------------------------------------------------------------------------------------------- running


def run_cases(cases: list[Case], methods: list[str]) -> dict[str, dict[str, list[float]]]:
    """Per method: per truth the RMSE of every case (inf for no result), plus the times."""
    res: dict[str, dict[str, list[float]]] = {}
    for m in methods:
        fn = METHODS[m]
        r: dict[str, list[float]] = {"seconds": [], "cpu": []}
        for c in cases:
            t, cpu = time.perf_counter(), time.process_time()
            try:
                est = fn(c.sar, c.opt)
            except (cv2.error, subprocess.TimeoutExpired):
                est = None
            r["seconds"].append(time.perf_counter() - t)
            r["cpu"].append(time.process_time() - cpu)
            for tname, truth in c.truths.items():
                e = float("inf") if est is None else transform_rmse(est, truth, c.sar.shape[:2])
                r.setdefault(tname, []).append(e)
        res[m] = r
        print(
            f"  {m}: done ({np.mean(r['seconds']):.2f} s/pair, load average {os.getloadavg()[0]:.1f})",
            file=sys.stderr,
            flush=True,
        )
    return res


def summarise(
    res: dict[str, dict[str, list[float]]], truths: list[str], thresholds: tuple[float, ...] = (3.0,)
) -> list[dict[str, object]]:
    rows = []
    for m, r in res.items():
        row: dict[str, object] = {
            "method": m,
            "s/pair": float(np.mean(r["seconds"])),
            "cpu s/pair": float(np.mean(r["cpu"])),
        }
        for t in truths:
            e = np.array(r[t])
            for th in thresholds:
                ok = e <= th
                row[f"{t}: success@{th:g}"] = float(ok.mean())
                row[f"{t}: median@{th:g}"] = float(np.median(e[ok])) if ok.any() else None
        rows.append(row)
    return rows


def print_table(title: str, rows: list[dict[str, object]]) -> None:
    print(f"\n## {title}")
    if not rows:
        return
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        cells = []
        for k in keys:
            v = r[k]
            cells.append("-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v)))
        print("| " + " | ".join(cells) + " |")


def cfog_checkpoints(data: Path, methods: list[str]) -> list[dict[str, object]]:
    rows = []
    for m in methods:
        row: dict[str, object] = {"method": m}
        for name in ("urban", "rural"):
            sar, opt, base, cp = cfog_pair(data, name)
            t = time.perf_counter()
            try:
                est = METHODS[m](sar, opt)
            except (cv2.error, subprocess.TimeoutExpired):
                est = None
            row[f"{name} s"] = time.perf_counter() - t
            if est is None:
                row[f"{name} CP RMSE px"] = None
                continue
            p = np.c_[cp[:, :2], np.ones(len(cp))] @ est.T
            p = p[:, :2] / p[:, 2:]
            row[f"{name} CP RMSE px"] = float(np.sqrt(((p - cp[:, 2:]) ** 2).sum(axis=1).mean()))
        rows.append(row)
    floor: dict[str, object] = {"method": "affine fit to the CPs themselves"}
    for name in ("urban", "rural"):
        sar, opt, base, cp = cfog_pair(data, name)
        p = np.c_[cp[:, :2], np.ones(len(cp))] @ base.T
        floor[f"{name} s"] = None
        floor[f"{name} CP RMSE px"] = float(np.sqrt(((p[:, :2] - cp[:, 2:]) ** 2).sum(axis=1).mean()))
    rows.append(floor)
    return rows


def big_scene(out_dir: Path, config: AutoConfig | None = None) -> dict[str, object]:
    from saropt.io.raster import open_scene
    from saropt.registration.auto.pipeline import independent_count
    from saropt.synthetic import make_scene_pair

    d = out_dir / "big8000"
    if not (d / "truth.json").exists():
        make_scene_pair(d, sar_size=(8000, 8000), seed=11, write_classes=False)
    truth = np.array(json.loads((d / "truth.json").read_text())["opt_to_sar"])
    sar, opt = open_scene(d / "sar.tif", "sar"), open_scene(d / "optical.tif", "optical")
    t, cpu = time.perf_counter(), time.process_time()
    reg = register(sar, opt, config=config)
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    tp = reg.tiepoints
    rel = tp.score >= 0.5
    xy = tp.sar_xy[reg.inliers]
    cells, _, _ = np.histogram2d(xy[:, 0], xy[:, 1], bins=4, range=[[0, 8000], [0, 8000]])
    return {
        "seconds": wall,
        "cpu seconds": cpu,
        "reliable tie points": int(rel.sum()),
        "inliers": reg.n_inliers,
        "independent inliers": int(independent_count(xy, tp.score[reg.inliers], 24.0)),
        "occupied 2000 px cells (of 16)": int((cells > 0).sum()),
        "min inliers per cell": int(cells.min()),
        "RMSE vs truth px": transform_rmse(reg.transform, truth, sar.shape, step=64),
    }


def _ids(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b or a) + 1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--methods", default="auto,sift,orb,ncc,phasecorr,arosics")
    ap.add_argument("--srif", default="1-100", help="SRIF pair ids, e.g. 1-100 or 1-20,50 ('' skips SRIF)")
    ap.add_argument("--rotated", type=int, default=100, help="number of cfog-rotated cases (0 skips them)")
    ap.add_argument(
        "--arosics-max", type=int, default=20, help="arosics runs on at most this many cases per set"
    )
    ap.add_argument("--no-checkpoints", action="store_true", help="skip the CFOG check-point section")
    ap.add_argument("--big", action="store_true", help="also the 8000 x 8000 synthetic scene")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "saropt-bench-registration")
    ap.add_argument("--threads", type=int, help="worker threads of auto (default: one per core, at most 4)")
    ap.add_argument("--out", type=Path, help="write all figures as JSON")
    a = ap.parse_args()
    auto_config = AutoConfig(threads=a.threads)
    METHODS["auto"] = functools.partial(auto, config=auto_config)
    methods = [m for m in a.methods.split(",") if m]
    unknown = set(methods) - set(METHODS)
    if unknown:
        ap.error(f"unknown methods {sorted(unknown)}")
    notes = []
    if "arosics" in methods:
        ok, msg = arosics_available()
        notes.append(msg)
        if not ok:
            methods.remove("arosics")
    print(
        f"# saropt registration benchmark ({time.strftime('%Y-%m-%d %H:%M')}, load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    for n in notes:
        print(f"- {n}")
    report: dict[str, object] = {"notes": notes}

    def subset(cases: list[Case], m: str) -> list[Case]:
        return cases[: a.arosics_max] if m == "arosics" else cases

    if a.srif:
        cases = srif_cases(a.data, _ids(a.srif))
        res = {m: run_cases(subset(cases, m), [m])[m] for m in methods}
        rows = summarise(res, ["gt file", "derived"], (3.0, 10.0))
        print_table(
            f"SRIF optical-SAR pairs {a.srif} ({len(cases)} pairs; arosics on the first {a.arosics_max})",
            rows,
        )
        report["srif"] = rows

    if a.rotated > 0:
        cases = rotated_cases(a.data, a.rotated)
        res = {m: run_cases(subset(cases, m), [m])[m] for m in methods}
        rows = summarise(res, ["exact"], (3.0,))
        print_table(f"cfog-rotated: SRIF protocol with exact truth ({len(cases)} cases)", rows)
        report["cfog_rotated"] = rows

    if not a.no_checkpoints:
        rows = cfog_checkpoints(a.data, methods)
        print_table("CFOG check points (RMSE at the published check points, origin=1)", rows)
        report["cfog_checkpoints"] = rows

    if a.big:
        big = big_scene(a.work, auto_config)
        print_table("8000 x 8000 synthetic 1 m scene pair (auto)", [big])
        report["big"] = big
    if a.out:
        from saropt.registration.auto.report import write_json

        write_json(a.out, report)


if __name__ == "__main__":
    main()
