"""Benchmark ``saropt build`` against a straightforward baseline, measured in the same run.

    python benchmarks/build.py                 # synthetic 8000 x 8000 pair, patch 256, stride 205, 2 workers
    python benchmarks/build.py --big           # also a 20000 x 20000 pair: peak memory must stay < 1.5 GB
    python benchmarks/build.py --workdir /dev/shm/saropt-bench   # outputs on tmpfs: no disk noise
    python benchmarks/build.py --repeat 5      # runs of each, alternating (default 3): the median is shown
    python benchmarks/build.py --unit-size 1024 --skip-baseline   # saropt with another unit size

On a shared VM disk, creating a file took 0.06 to 1.0 ms from one run to the next (timed inside the build), which
moves the 8000 px figures by seconds; on tmpfs both builds measure compute and page-cache writes only.

saropt: the real ``build_dataset`` (windowed reads, one OpenCV warp per 2048-px unit, 8-bit mapping, every
quality filter, PNG writes, near-duplicates, splits, index, overviews) in worker processes.

Baseline (what a script would do): ``rasterio.warp.reproject`` of the whole optical image onto the SAR grid
with the same fitted affine (bilinear), the whole SAR read and mapped to 8-bit with the same dB mapping, then
every window sliced and written with PIL (same zlib level as saropt, 1). No quality filters, one process.

Every run is a fresh Python process, as a command-line build is (a second build in one process finds the
fork server, the imports and GDAL's cache warm: 0.5-1 s faster here), and the runs of the two tools alternate,
so that the machine's drift moves both alike; the run of median wall time is reported.

Reported side by side: wall time, patch pairs per second (kept pairs for saropt, all pairs for the baseline,
which filters nothing), megapixels warped per second (SAR-grid pixels produced by the warp, over the wall
time), peak memory (resident memory summed over the process and its children, sampled every 50 ms), and the
CPU time. The machine is shared, so CPU seconds are printed too: pairs per CPU-second say what 2 idle cores
would do.

Peak memory comes from one more run of each tool after the timed ones: reading the PSS of every process every
50 ms costs about 0.7 CPU-s over a 4 s saropt build (17% of a core; the kernel walks each process's page
tables), which on 2 cores slowed saropt's wall time by 0.3-0.8 s in the same run, and the one-process baseline
(whose second core is idle) by nothing measurable. The timed runs sample CPU times only (/proc/<pid>/stat,
microseconds); the memory run's wall time is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


# ------------------------------------------------------------------------------------------------ measurement


class PeakMemory:
    """Samples the memory (PSS) of this process plus all its descendants (psutil) in a thread.

    The sampler runs in the measured process and must stay cheap so that it does not slow what it measures:
    listing the descendants scans /proc (about 1.3 ms), so the list is refreshed every ``refresh`` seconds
    while the PSS of the known processes is read every ``interval`` (about 0.2 ms per process). Sampling every
    20 ms with a fresh list each time took about 10% of a core, which cost saropt's 2-worker build 1 s of its
    6.6 s wall time against 0.1 s for the single-process baseline.
    """

    def __init__(self, interval: float = 0.05, refresh: float = 0.5, pss: bool = True) -> None:
        import psutil

        self.proc = psutil.Process()
        self.pss = pss  # False: CPU times only (a timed run), peak stays 0
        self.interval = interval
        self.refresh = refresh
        self.peak = 0
        self.child_cpu: dict[int, float] = {}
        self.own_cpu = 0.0
        self._procs: list[Any] = [self.proc]
        self._listed = -1.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        import psutil

        now = time.perf_counter()
        if now - self._listed >= self.refresh:
            try:
                self._procs = [self.proc, *self.proc.children(recursive=True)]
            except psutil.Error:
                pass
            self._listed = now
        total = 0
        for p in self._procs:
            try:
                if self.pss:
                    total += _pss(p)
                if p.pid != self.proc.pid:
                    t = p.cpu_times()
                    self.child_cpu[p.pid] = t.user + t.system
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        t0 = time.thread_time()
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self.own_cpu = time.thread_time() - t0  # the sampler's own CPU time, left out of the figures
            time.sleep(self.interval)

    def __enter__(self) -> Self:
        self.peak = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _pss(p: Any) -> int:
    """Proportional set size (shared pages split between the processes sharing them), else RSS.

    Workers forked from one server share their library pages; summing RSS would count those pages once per
    process, PSS counts them once in total.
    """
    try:
        return int(p.memory_full_info().pss)
    except (AttributeError, OSError):
        return int(p.memory_info().rss)


def cpu_seconds() -> float:
    """CPU time of this process."""
    t = os.times()
    return t.user + t.system


def measure(fn: Callable[[], Any], memory: bool = True) -> tuple[Any, dict[str, float]]:
    """Run ``fn``; wall time, CPU time (this process plus every descendant, sampled; without the sampler
    thread's own) and peak memory (``memory=False``: not sampled, reported as 0)."""
    c0, t0 = cpu_seconds(), time.perf_counter()
    with PeakMemory(pss=memory) as mem:
        before = dict(mem.child_cpu)
        out = fn()
    wall = time.perf_counter() - t0
    children = sum(v - before.get(pid, 0.0) for pid, v in mem.child_cpu.items())
    # the sampler thread's own CPU time is left out: it is the measurement's, not the build's
    cpu = cpu_seconds() - c0 + children - mem.own_cpu
    return out, {"wall_s": wall, "cpu_s": cpu, "peak_mb": mem.peak / 2**20}


# ---------------------------------------------------------------------------------------------------- inputs


def scene(workdir: Path, size: int) -> dict[str, Any]:
    """A synthetic pair of ``size`` px (generated once, reused)."""
    d = workdir / f"scene-{size}"
    meta = d / "bench.json"
    if meta.is_file():
        return json.loads(meta.read_text())
    from saropt.synthetic import make_scene_pair

    t = time.perf_counter()
    print(f"generating a {size} x {size} synthetic pair in {d} ...", flush=True)
    p = make_scene_pair(d, sar_size=(size, size), seed=0, write_classes=False)
    info = {
        "sar": str(p.sar_path),
        "opt": str(p.opt_path),
        "tiepoints": str(p.tiepoints_path),
        "size": size,
        "opt_size": list(p.opt_size),
    }
    meta.write_text(json.dumps(info))
    print(f"  generated in {time.perf_counter() - t:.0f} s", flush=True)
    return info


def config(info: dict[str, Any], patch: int, stride: int, unit_size: int | None = None) -> Any:
    from saropt.dataset.config import config_from_dict

    return config_from_dict(
        {
            "scenes": [
                {"id": "bench", "sar": info["sar"], "optical": info["opt"], "tiepoints": info["tiepoints"]}
            ],
            "patch_size": patch,
            "stride": stride,
            "model": "affine",
            "unit_size": unit_size,
        }
    )


# ------------------------------------------------------------------------------------------------------ runs


def run_saropt(cfg: Any, out: Path, workers: int, memory: bool = True) -> dict[str, Any]:
    from saropt.dataset.build import build_dataset

    shutil.rmtree(out, ignore_errors=True)
    res, m = measure(lambda: build_dataset(cfg, out, workers=workers), memory)
    s = res.summary
    fp = s["scenes"][0]["regions"][0]
    warped = _warped_pixels(cfg, out)
    m.update(
        pairs=s["pairs_total"],
        kept=s["kept"],
        pairs_per_s=s["kept"] / m["wall_s"],
        all_pairs_per_s=s["pairs_total"] / m["wall_s"],
        mp_warped=warped / 1e6,
        mp_per_s=warped / 1e6 / m["wall_s"],
        pairs_per_cpu_s=s["kept"] / m["cpu_s"],
        timings=res.timings,
        rmse=fp["rmse_px"],
    )
    return m


def _warped_pixels(cfg: Any, out: Path) -> int:
    from saropt.dataset.plan import resolve_plan

    plan = resolve_plan(cfg)
    return sum(u.block.area for u in plan.units)


def run_baseline(cfg: Any, out: Path, memory: bool = True) -> dict[str, Any]:
    """rasterio.warp.reproject of the whole optical image, then slicing and PIL PNG writes."""
    shutil.rmtree(out, ignore_errors=True)

    def work() -> tuple[int, int]:
        import rasterio
        from PIL import Image
        from rasterio.crs import CRS
        from rasterio.transform import Affine
        from rasterio.warp import Resampling, reproject

        from saropt.dataset.plan import resolve_plan

        plan = resolve_plan(cfg)  # the same registration and SAR mapping as saropt
        sp = plan.scenes[0]
        rp = sp.regions[0]
        m_inv = np.linalg.inv(np.asarray(rp.registration.transform.matrix, dtype=np.float64))
        # corner-based geotransforms: optical pixel corners are the "world"; SAR corner -> optical corner
        t_plus, t_minus = np.eye(3), np.eye(3)
        t_plus[:2, 2], t_minus[:2, 2] = 0.5, -0.5
        a = t_plus @ m_inv @ t_minus
        dst_tf = Affine(a[0, 0], a[0, 1], a[0, 2], a[1, 0], a[1, 1], a[1, 2])
        crs = CRS.from_epsg(3857)
        with rasterio.open(sp.opt.path) as src:
            opt = src.read()
        warped = np.zeros((opt.shape[0], sp.sar.height, sp.sar.width), dtype=opt.dtype)
        reproject(
            opt,
            warped,
            src_transform=Affine.identity(),
            src_crs=crs,
            dst_transform=dst_tf,
            dst_crs=crs,
            resampling=Resampling.bilinear,
            num_threads=1,
        )
        del opt
        with rasterio.open(sp.sar.path) as src:
            sar = src.read(1).astype(np.float32)
        valid = sar != (sp.sar.nodata or 0)
        sar8 = sp.sar_mapping.apply(sar[None], valid)
        del sar
        rgb = np.moveaxis(warped, 0, -1)
        sd, od = out / "sar", out / "opt"
        sd.mkdir(parents=True)
        od.mkdir(parents=True)
        n = 0
        for k, w in enumerate(rp.windows):
            rs, cs = w.to_slices()
            Image.fromarray(np.ascontiguousarray(sar8[rs, cs])).save(sd / f"{k}.png", compress_level=1)
            Image.fromarray(np.ascontiguousarray(rgb[rs, cs])).save(od / f"{k}.png", compress_level=1)
            n += 1
        return n, sp.sar.width * sp.sar.height

    (n, warped), m = measure(work, memory)
    m.update(
        pairs=n,
        kept=n,
        pairs_per_s=n / m["wall_s"],
        all_pairs_per_s=n / m["wall_s"],
        mp_warped=warped / 1e6,
        mp_per_s=warped / 1e6 / m["wall_s"],
        pairs_per_cpu_s=n / m["cpu_s"],
    )
    return m


# ------------------------------------------------------------------------------------------------------ report


def run_child(tool: str, args: argparse.Namespace, memory: bool = False) -> dict[str, Any]:
    """One measured run of ``tool`` in a fresh Python process (this script with ``--one``); ``memory``: sample
    peak memory (a memory run) instead of timing undisturbed."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, __file__, "--one", tool, "--json-out", str(out), "--workdir", str(args.workdir)]
        cmd += ["--size", str(args.size), "--patch", str(args.patch), "--stride", str(args.stride)]
        cmd += ["--workers", str(args.workers)]
        if memory:
            cmd += ["--memory-run"]
        if args.unit_size is not None:
            cmd += ["--unit-size", str(args.unit_size)]
        subprocess.run(cmd, check=True)
        return json.loads(out.read_text())


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median wall time (the later one of the middle two for an even count)."""
    return sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]


def report(title: str, rows: dict[str, dict[str, Any]]) -> None:
    names = list(rows)
    print(f"\n{title}")
    fmt = "  {:<28}" + "".join("{:>16}" for _ in names) + ("{:>10}" if len(names) == 2 else "")
    print(fmt.format("", *names, *(["ratio"] if len(names) == 2 else [])))
    lines = [
        ("wall time (s)", "wall_s", "{:.1f}", True),
        ("CPU time (s)", "cpu_s", "{:.1f}", True),
        ("patch pairs", "pairs", "{:d}", None),
        ("kept pairs", "kept", "{:d}", None),
        ("kept pairs / s (wall)", "pairs_per_s", "{:.0f}", False),
        ("all pairs / s (wall)", "all_pairs_per_s", "{:.0f}", False),
        ("kept pairs / CPU-s", "pairs_per_cpu_s", "{:.0f}", False),
        ("MP warped", "mp_warped", "{:.0f}", None),
        ("MP warped / s (wall)", "mp_per_s", "{:.0f}", False),
        ("peak memory, PSS (MB)", "peak_mb", "{:.0f}", True),
        ("wall time, memory run (s)", "memory_run_wall_s", "{:.1f}", True),
    ]
    for label, key, f, lower_better in lines:
        vals = [rows[n].get(key) for n in names]
        cells = [f.format(v) if v is not None else "-" for v in vals]
        ratio = []
        if len(names) == 2 and lower_better is not None and all(v for v in vals):
            r = vals[1] / vals[0] if lower_better else vals[0] / vals[1]
            ratio = [f"{r:.2f}x"]
        elif len(names) == 2:
            ratio = [""]
        print(fmt.format(label, *cells, *ratio))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=8000)
    ap.add_argument("--patch", type=int, default=256)
    ap.add_argument("--stride", type=int, default=205)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--unit-size", type=int, help="saropt's unit_size in px (default: the build's own choice)")
    ap.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "saropt-bench")
    ap.add_argument("--big", action="store_true", help="also build a 20000 x 20000 pair (peak memory)")
    ap.add_argument("--big-size", type=int, default=20000)
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each, alternating saropt and baseline; the median run is reported (default 3)",
    )
    ap.add_argument("--one", choices=["saropt", "baseline"], help=argparse.SUPPRESS)  # one run, in a child
    ap.add_argument("--json-out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--memory-run", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    import logging
    import warnings

    logging.basicConfig(level=logging.WARNING)
    # the synthetic scenes have no georeferencing, which the baseline's rasterio.open reports on every open
    warnings.filterwarnings("ignore", message="Dataset has no geotransform")
    if not args.one:
        print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f} (shared machine)", flush=True)
    info = scene(args.workdir, args.size)
    cfg = config(info, args.patch, args.stride, args.unit_size)
    if args.one:
        run = run_saropt if args.one == "saropt" else run_baseline
        kw = {"workers": args.workers} if args.one == "saropt" else {}
        result = run(cfg, args.workdir / f"out-{args.one}", memory=args.memory_run, **kw)
        args.json_out.write_text(json.dumps(result))
        return
    # Each run in a fresh process, as a command-line build is: a second build in one process finds the fork
    # server, the imports, the open datasets and GDAL's cache warm (plan 0.05 s instead of 0.3-0.4 s).
    # Alternating runs: this machine's speed drifts by 20% within minutes, which moves both tools alike.
    runs: dict[str, list[dict[str, Any]]] = {"saropt": [], "baseline": []}
    for i in range(max(1, args.repeat)):
        r = run_child("saropt", args)
        runs["saropt"].append(r)
        stages = ", ".join(f"{k} {v:.2f}" for k, v in r["timings"].items())
        line = f"  run {i + 1}: saropt {r['wall_s']:.2f} s ({stages})"
        if not args.skip_baseline:
            runs["baseline"].append(run_child("baseline", args))
            line += f", baseline {runs['baseline'][-1]['wall_s']:.2f} s"
        print(line, flush=True)
    rows = {name: median_run(rs) for name, rs in runs.items() if rs}
    # Peak memory from one more run of each, sampled (its sampler slows a 2-worker build: see the docstring).
    for name in rows:
        mem = run_child(name, args, memory=True)
        rows[name].update(peak_mb=mem["peak_mb"], memory_run_wall_s=mem["wall_s"])
    print("  memory runs: " + ", ".join(f"{n} {r['memory_run_wall_s']:.2f} s" for n, r in rows.items()))
    report(
        f"{args.size} x {args.size} pair, patch {args.patch}, stride {args.stride}, saropt with {args.workers} "
        f"workers, median of {len(runs['saropt'])} runs (load average now {os.getloadavg()[0]:.1f})",
        rows,
    )
    if args.big:
        big = scene(args.workdir, args.big_size)
        cfg_big = config(big, args.patch, args.stride, args.unit_size)
        r = run_saropt(cfg_big, args.workdir / "out-saropt-big", args.workers)
        report(
            f"{args.big_size} x {args.big_size} pair (saropt only; baseline would hold whole rasters)",
            {"saropt": r},
        )
        print(
            f"  peak memory {r['peak_mb']:.0f} MB: {'under' if r['peak_mb'] < 1536 else 'OVER'} the 1.5 GB bound"
        )


if __name__ == "__main__":
    main()
