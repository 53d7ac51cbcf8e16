#!/usr/bin/env python3
"""Loading throughput: 256x256 SAR + RGB pairs per second, by source format and DataLoader workers.

Writes fake copies (same pairs as QXS-style PNG folders, as GeoTIFF, packed; plus a fake SEN12MS copy) into a
work folder, then measures, in one run:

* a plain PIL + torchvision DataLoader over the PNG pairs (what most papers' ad-hoc loaders do),
* saropt readers: QXSSaropt (PNG, OpenCV), GeoTiffPairs (rasterio), PackedDataset (map-style memmap),
  PackedStream (sequential shards, batches in shared memory; float and raw uint8),
* SEN12MS on the same fake copy: saropt's SEN12MS (S1 VV/VH + S2 B04/B03/B02, without and with the
  land-cover file) against torchgeo's ``SEN12MS`` with the same output: the same 5 bands as float32 plus the
  IGBP land-cover band as int64 (torchgeo reads lc, s1 and s2 and returns ``mask`` = IGBP), the same batch
  size, shuffling and workers. torchgeo runs in a separate virtual environment when it is not importable here,
  and the two are timed in alternating rounds (medians reported) so that both see the same machine load;
  besides pairs/s it reports CPU ms per pair over the main process and its workers, which depends far less
  on what else runs on the machine,
* where the time goes: per-file decode (cv2 vs PIL), GeoTIFF reads, float scaling, transforms,
  speckle filters.

Usage::

    nice -n 10 .venv/bin/python benchmarks/loading.py [--pairs 512] [--workers 0 2] [--json out.json]
        [--torchgeo-python /tmp/tg-venv/bin/python] [--only sen12ms] [--rounds 3] [--work DIR]

Throughput excludes worker start-up (timing starts at the first batch; for the torchgeo comparison after one
untimed epoch) and runs for at least ``--seconds`` of whole epochs. Batches are not touched in the main
process (the same for every loader). With workers, each batch crosses processes through fresh shared-memory
pages, a cost per byte that every loader pays alike (here about 1.4 ms of CPU per MiB, i.e. ~2.4 ms per
SEN12MS pair of 5 float32 bands + IGBP int64: more than saropt's whole decode).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.append(str(ROOT))

BATCH = 32


def _throughput(make_loader: Callable[[], Any], min_seconds: float, count: Callable[[Any], int]) -> float:
    """Pairs per second over whole epochs after the first batch, for at least ``min_seconds``."""
    loader = make_loader()
    it = iter(loader)
    next(it)  # start-up (workers, first reads) excluded
    n, t0 = 0, time.perf_counter()
    while True:
        for batch in it:
            n += count(batch)
        if time.perf_counter() - t0 >= min_seconds:
            break
        it = iter(loader)
    return n / (time.perf_counter() - t0)


def _count(batch: Any) -> int:
    return int(batch["sar"].shape[0]) if isinstance(batch, dict) else int(batch[0].shape[0])


class PlainPNG:
    """The common ad-hoc loader: PIL open + torchvision ToTensor, pairs listed by file name."""

    def __init__(self, sar_dir: Path, opt_dir: Path) -> None:
        self.names = sorted(p.name for p in sar_dir.glob("*.png"))
        self.sar_dir, self.opt_dir = sar_dir, opt_dir

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        from PIL import Image
        from torchvision.transforms.functional import to_tensor

        sar = to_tensor(Image.open(self.sar_dir / self.names[i]).convert("L"))
        opt = to_tensor(Image.open(self.opt_dir / self.names[i]).convert("RGB"))
        return sar, opt


def write_data(work: Path, pairs: int) -> dict[str, Path]:
    """Fake QXS-style PNG pairs, the same pairs as GeoTIFF, and a fake SEN12MS copy (256x256)."""
    import rasterio

    from tests.data.qxs_saropt.data import generate as gen_qxs
    from tests.data.sen12ms.data import generate as gen_sen12ms

    paths = {"qxs": work / "qxs", "tif": work / "tif", "sen12ms": work / "sen12ms", "packed": work / "packed"}
    if not (paths["qxs"] / "QXSLAB_SAROPT").is_dir():
        grid = int(np.ceil(np.sqrt(pairs / 4)))
        gen_qxs(paths["qxs"], size=256, cities=4, grid=grid)
    base = paths["qxs"] / "QXSLAB_SAROPT"
    if not (paths["tif"] / "opt").is_dir():
        import cv2

        for side, flag in (("sar", cv2.IMREAD_GRAYSCALE), ("opt", cv2.IMREAD_COLOR)):
            out = paths["tif"] / side
            out.mkdir(parents=True, exist_ok=True)
            for p in sorted((base / f"{side}_256_oc_0.2").glob("*.png")):
                img = cv2.imread(str(p), flag)
                arr = img[None] if img.ndim == 2 else img[:, :, ::-1].transpose(2, 0, 1)
                with rasterio.open(
                    out / f"{p.stem}.tif",
                    "w",
                    driver="GTiff",
                    width=256,
                    height=256,
                    count=arr.shape[0],
                    dtype="uint8",
                    crs="EPSG:32633",
                    transform=rasterio.transform.Affine(1, 0, 500000, 0, -1, 4000000),
                ) as dst:
                    dst.write(arr)
    if not (paths["sen12ms"] / "train_list.txt").is_file():
        # half of the patches are in hold-out scenes: generate twice as many, benchmark the train split
        gen_sen12ms(paths["sen12ms"], size=256, patches=max(1, pairs // 4))
    return paths


def profile(paths: dict[str, Path], reps: int = 200) -> dict[str, float]:
    """Milliseconds per operation on one thread."""
    import cv2
    import rasterio
    import tifffile
    import torch
    from PIL import Image

    from saropt.data import SEN12MS
    from saropt.data import transforms as T
    from saropt.data.decode import read_raster
    from saropt.data.scaling import UINT8
    from saropt.data.speckle import frost, lee, refined_lee

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    base = paths["qxs"] / "QXSLAB_SAROPT"
    sar_png = sorted((base / "sar_256_oc_0.2").glob("*.png"))[:reps]
    opt_png = sorted((base / "opt_256_oc_0.2").glob("*.png"))[:reps]
    opt_tif = sorted((paths["tif"] / "opt").glob("*.tif"))[:reps]
    s1 = sorted(paths["sen12ms"].glob("ROIs1158_spring/s1_1/*.tif"))
    s2 = sorted(paths["sen12ms"].glob("ROIs1158_spring/s2_1/*.tif"))
    sen12ms = SEN12MS(paths["sen12ms"])

    def per(fn: Callable[[Any], Any], items: list[Any]) -> float:
        fn(items[0])
        t0 = time.perf_counter()
        for x in items:
            fn(x)
        return (time.perf_counter() - t0) / len(items) * 1e3

    def rio(path: Path, bands: list[int] | None = None) -> Any:
        with rasterio.open(path) as src:
            return src.read(bands) if bands else src.read()

    out = {
        "png_sar_cv2_ms": per(lambda p: cv2.imread(str(p), cv2.IMREAD_UNCHANGED), sar_png),
        "png_opt_cv2_ms": per(lambda p: cv2.imread(str(p), cv2.IMREAD_UNCHANGED), opt_png),
        "png_sar_pil_ms": per(lambda p: np.asarray(Image.open(p).convert("L")), sar_png),
        "png_opt_pil_ms": per(lambda p: np.asarray(Image.open(p).convert("RGB")), opt_png),
        "tif_opt_rasterio_ms": per(rio, opt_tif),
        "sen12ms_s1_rasterio_ms": per(rio, s1 * 4),
        "sen12ms_s2_13band_rasterio_ms": per(rio, s2 * 4),
        "sen12ms_s2_3band_rasterio_ms": per(lambda p: rio(p, [4, 3, 2]), s2 * 4),
        "tif_opt_tifffile_ms": per(lambda p: tifffile.imread(p), opt_tif),
        "sen12ms_s2_13band_tifffile_ms": per(lambda p: tifffile.imread(p), s2 * 4),
        "sen12ms_s2_3band_saropt_plain_tiff_ms": per(lambda p: read_raster(p, [4, 3, 2]), s2 * 4),
        "sen12ms_pair_saropt_reader_ms": per(lambda i: sen12ms[i % len(sen12ms)], list(range(reps))),
    }
    raw = np.random.randint(0, 255, (3, 256, 256), np.uint8)
    out["scale_uint8_rgb_ms"] = per(lambda a: UINT8.apply(a), [raw] * reps)
    sample = {
        "sar": torch.rand(1, 256, 256),
        "opt": torch.rand(3, 256, 256),
        "meta": {"window": (0, 0, 256, 256)},
    }
    aug = torch.nn.Sequential(T.RandomFlip(), T.RandomRot90(), T.RandomCrop(224))
    out["augment_flip_rot_crop_ms"] = per(aug, [sample] * reps)
    out["misalign_ms"] = per(T.RandomMisalign(8), [sample] * reps)
    img = torch.rand(1, 256, 256) + 0.1
    out["speckle_lee7_ms"] = per(lambda x: lee(x, 7, 4), [img] * 20)
    out["speckle_refined_lee_ms"] = per(lambda x: refined_lee(x, 4), [img] * 20)
    out["speckle_frost5_ms"] = per(lambda x: frost(x, 5), [img] * 20)
    torch.set_num_threads(os.cpu_count() or 1)
    return {k: round(v, 3) for k, v in out.items()}


def cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process and its live children (DataLoader workers).

    Children are read from ``/proc`` (Linux); elsewhere only this process counts.
    """
    t = os.times()
    total = t.user + t.system
    if not os.path.isdir("/proc"):
        return total
    me, tick = os.getpid(), os.sysconf("SC_CLK_TCK")
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # state, ppid, ..., utime (11), stime (12)
        if int(fields[1]) == me:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


class Meter:
    """Throughput and CPU cost of one DataLoader over whole epochs; persistent workers live between calls.

    The first call runs one epoch untimed (worker start-up, first reads, page cache). Every timed window then
    starts at an epoch boundary with idle workers, so measurements of two loaders can alternate. Besides pairs
    per second (which depends on what else runs on the machine) it reports CPU milliseconds per pair, summed
    over the main process and its workers (which hardly does).
    """

    def __init__(self, loader: Any, key: str = "sar") -> None:
        self.loader, self.key, self.warm = loader, key, False

    def measure(self, seconds: float) -> tuple[float, float]:
        """``(pairs per second, CPU ms per pair)`` over whole epochs lasting at least ``seconds``."""
        if not self.warm:
            for _ in self.loader:
                pass
            self.warm = True
        n, c0, t0 = 0, cpu_seconds(), time.perf_counter()
        while True:
            for batch in self.loader:
                n += int(batch[self.key].shape[0])
            if time.perf_counter() - t0 >= seconds:
                break
        dt, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        return n / dt, cpu / n * 1e3


#: torchgeo's side of the SEN12MS comparison, in its own interpreter: one line ``WORKERS SECONDS`` in, one
#: JSON line out; it imports :class:`Meter` from this file, so both sides are timed by the same code.
TORCHGEO_SERVER = r"""
import json, sys
sys.path.insert(0, sys.argv[2])
import torch
import torchgeo
from torch.utils.data import DataLoader
from torchgeo.datasets import SEN12MS
from loading import BATCH, Meter
torch.set_num_threads(1)
meters = {}
print(json.dumps({"version": torchgeo.__version__}), flush=True)
for line in sys.stdin:
    w, seconds = int(line.split()[0]), float(line.split()[1])
    if w not in meters:
        ds = SEN12MS(sys.argv[1], split="train", bands=("VV", "VH", "B04", "B03", "B02"))
        dl = DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=w, persistent_workers=w > 0)
        meters[w] = Meter(dl, key="image")
    rate, cpu = meters[w].measure(seconds)
    print(json.dumps({"pairs_s": rate, "cpu_ms": cpu, "len": len(meters[w].loader.dataset)}), flush=True)
"""


def _torchgeo_python(python: str | None) -> str | None:
    try:
        import torchgeo  # noqa: F401

        return sys.executable
    except ImportError:
        pass
    for py in (python, "/tmp/tg-venv/bin/python"):
        if py and Path(py).exists():
            return py
    return None


def compare_torchgeo(
    python: str | None, root: Path, workers: list[int], seconds: float, rounds: int
) -> dict[str, Any]:
    """saropt's SEN12MS against torchgeo's on the same files, same output, timed in alternating rounds.

    Both return S1 VV, VH and S2 B04, B03, B02 as float32 and the IGBP land-cover band as int64 (torchgeo:
    ``image`` (5, H, W) and ``mask`` (H, W); saropt: ``sar`` (2, H, W), ``opt`` (3, H, W) scaled to [0, 1],
    ``lc`` (1, H, W)) and read the same three files per pair; batch size, shuffling, worker count and
    ``persistent_workers`` are the same. Rounds alternate (saropt first on even rounds, torchgeo first on odd
    ones) so both see the same machine load; the medians are reported.

    Returns:
        ``{"version", "rounds", "saropt": {w: [(pairs/s, CPU ms/pair)...]}, "torchgeo": {...},
        "median": {...}, "speedup": {w: median of the per-round pairs/s ratios}, "cpu_speedup": {w: the
        same for CPU per pair}}``, or ``{"skipped": reason}``.
    """
    from torch.utils.data import DataLoader

    from saropt.data import SEN12MS

    py = _torchgeo_python(python)
    if py is None:
        return {
            "skipped": "torchgeo not installed "
            "(python3 -m venv /tmp/tg-venv && /tmp/tg-venv/bin/pip install torchgeo)"
        }
    # stderr to a file, not a pipe: warnings piling up in an unread pipe (64 KiB) would block the server
    errlog = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(
        [py, "-c", TORCHGEO_SERVER, str(root), str(Path(__file__).resolve().parent)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errlog,
        text=True,
    )

    def ask(line: str) -> dict[str, Any]:
        if line:
            proc.stdin.write(line + "\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
        out = proc.stdout.readline()  # type: ignore[union-attr]
        if not out:
            proc.wait(timeout=60)
            errlog.seek(0)
            err = errlog.read().strip().splitlines()[-1:] or ["failed"]
            raise RuntimeError(f"torchgeo run failed with {py}: {err[0]}")
        return dict(json.loads(out))

    res: dict[str, Any] = {
        "rounds": rounds,
        "saropt": {},
        "torchgeo": {},
        "median": {},
        "speedup": {},
        "cpu_speedup": {},
    }
    try:
        res["version"] = ask("")["version"]
        for w in workers:
            ours = Meter(
                DataLoader(
                    SEN12MS(root, lc=True, lc_bands=("IGBP",)),
                    batch_size=BATCH,
                    shuffle=True,
                    num_workers=w,
                    persistent_workers=w > 0,
                )
            )
            mine: list[tuple[float, float]] = []
            theirs: list[tuple[float, float]] = []
            for r in range(rounds):
                for side in ("saropt", "torchgeo") if r % 2 == 0 else ("torchgeo", "saropt"):
                    if side == "saropt":
                        mine.append(ours.measure(seconds))
                    else:
                        got = ask(f"{w} {seconds}")
                        theirs.append((got["pairs_s"], got["cpu_ms"]))
            del ours
            key = str(w)
            res["saropt"][key] = [(round(a, 1), round(b, 2)) for a, b in mine]
            res["torchgeo"][key] = [(round(a, 1), round(b, 2)) for a, b in theirs]
            res["median"][key] = {
                "saropt": round(float(np.median([a for a, _ in mine])), 1),
                "torchgeo": round(float(np.median([a for a, _ in theirs])), 1),
                "saropt_cpu_ms": round(float(np.median([b for _, b in mine])), 2),
                "torchgeo_cpu_ms": round(float(np.median([b for _, b in theirs])), 2),
            }
            res["speedup"][key] = round(float(np.median([a[0] / b[0] for a, b in zip(mine, theirs)])), 2)
            res["cpu_speedup"][key] = round(float(np.median([b[1] / a[1] for a, b in zip(mine, theirs)])), 2)
    except RuntimeError as exc:
        return {"skipped": str(exc)}
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=60)
        errlog.close()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=512, help="pairs per fake copy")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--seconds", type=float, default=3.0, help="minimum timed seconds per measurement")
    ap.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    ap.add_argument("--torchgeo-python", default=None, help="interpreter with torchgeo installed")
    ap.add_argument("--json", type=Path, default=None, help="write the results as JSON")
    ap.add_argument("--skip-profile", action="store_true")
    ap.add_argument(
        "--rounds", type=int, default=3, help="alternating saropt/torchgeo rounds per worker count (SEN12MS)"
    )
    ap.add_argument(
        "--only",
        default=None,
        help="measure only the loaders whose name contains this text (case-insensitive; 'sen12ms' or "
        "'torchgeo' also runs the comparison with torchgeo); the data is still written",
    )
    args = ap.parse_args()

    import torch
    from torch.utils.data import DataLoader

    # default thread pool spins against the workers and the collate step, hiding the loaders' own costs.
    torch.set_num_threads(1)
    from saropt.data import SEN12MS, GeoTiffPairs, PackedDataset, PackedStream, QXSSaropt, pack

    work = args.work or Path(tempfile.mkdtemp(prefix="saropt-bench-"))
    t0 = time.perf_counter()
    paths = write_data(work, args.pairs)
    qxs = QXSSaropt(paths["qxs"])
    if not (paths["packed"] / "manifest.json").is_file():
        pack(qxs, paths["packed"], shard_size=256)
    print(
        f"data: {len(qxs)} PNG/GeoTIFF/packed pairs, SEN12MS train {len(SEN12MS(paths['sen12ms']))} pairs "
        f"in {work} ({time.perf_counter() - t0:.0f} s to write)",
        flush=True,
    )

    base = paths["qxs"] / "QXSLAB_SAROPT"
    loaders: dict[str, Callable[[int], Any]] = {
        "plain PIL+ToTensor (PNG)": lambda w: DataLoader(
            PlainPNG(base / "sar_256_oc_0.2", base / "opt_256_oc_0.2"),
            batch_size=BATCH,
            shuffle=True,
            num_workers=w,
            persistent_workers=w > 0,
        ),
        "saropt QXSSaropt (PNG, cv2)": lambda w: DataLoader(
            qxs, batch_size=BATCH, shuffle=True, num_workers=w, persistent_workers=w > 0
        ),
        "saropt GeoTiffPairs (GeoTIFF)": lambda w: DataLoader(
            GeoTiffPairs.from_folders(paths["tif"] / "sar", paths["tif"] / "opt", georef=False),
            batch_size=BATCH,
            shuffle=True,
            num_workers=w,
            persistent_workers=w > 0,
        ),
        "saropt PackedDataset (memmap)": lambda w: DataLoader(
            PackedDataset(paths["packed"]),
            batch_size=BATCH,
            shuffle=True,
            num_workers=w,
            persistent_workers=w > 0,
        ),
        "saropt PackedStream (float32)": lambda w: DataLoader(
            PackedStream(paths["packed"], batch_size=BATCH),
            batch_size=None,
            num_workers=w,
            persistent_workers=w > 0,
        ),
        "saropt PackedStream.loader (uint8 shipped, float out)": lambda w: PackedStream(
            paths["packed"], batch_size=BATCH
        ).loader(num_workers=w),
        "saropt SEN12MS (S1 2 + S2 3 bands)": lambda w: DataLoader(
            SEN12MS(paths["sen12ms"]), batch_size=BATCH, shuffle=True, num_workers=w, persistent_workers=w > 0
        ),
        "saropt SEN12MS (+ all 4 lc bands, int64)": lambda w: DataLoader(
            SEN12MS(paths["sen12ms"], lc=True),
            batch_size=BATCH,
            shuffle=True,
            num_workers=w,
            persistent_workers=w > 0,
        ),
    }
    results: dict[str, Any] = {
        "load_average": os.getloadavg(),
        "pairs": len(qxs),
        "batch_size": BATCH,
        "cpu_count": os.cpu_count(),
        "throughput": {},
    }
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}, {os.cpu_count()} CPUs")
    print(f"\n{'loader':48s} " + " ".join(f"{f'{w} workers':>12s}" for w in args.workers))
    if args.only:
        loaders = {k: v for k, v in loaders.items() if args.only.lower() in k.lower()}
    for name, make in loaders.items():
        row = {}
        for w in args.workers:
            row[str(w)] = round(_throughput(lambda: make(w), args.seconds, _count), 1)
        results["throughput"][name] = row
        print(f"{name:48s} " + " ".join(f"{row[str(w)]:12.1f}" for w in args.workers), flush=True)
    if not args.only or any(args.only.lower() in k for k in ("sen12ms", "torchgeo")):
        t0 = time.perf_counter()
        tg = compare_torchgeo(args.torchgeo_python, paths["sen12ms"], args.workers, args.seconds, args.rounds)
        results["torchgeo"] = tg
        if "skipped" in tg:
            print(f"{'torchgeo SEN12MS':48s} skipped: {tg['skipped']}")
        else:
            print(
                f"\nSEN12MS, same files and output as torchgeo (+ lc IGBP int64), "
                f"{args.rounds} alternating rounds, medians (load average "
                f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}, {time.perf_counter() - t0:.0f} s):"
            )
            med = tg["median"]
            print(
                f"{'saropt SEN12MS (+ lc IGBP, as torchgeo)':48s} "
                + " ".join(f"{med[str(w)]['saropt']:12.1f}" for w in args.workers)
            )
            print(
                f"{'torchgeo ' + tg['version'] + ' SEN12MS (same 5 bands + IGBP)':48s} "
                + " ".join(f"{med[str(w)]['torchgeo']:12.1f}" for w in args.workers)
            )
            print(
                f"{'  speed-up over torchgeo (median of rounds)':48s} "
                + " ".join(f"{tg['speedup'][str(w)]:11.2f}x" for w in args.workers)
            )
            for side in ("saropt", "torchgeo"):
                print(
                    f"{'  ' + side + ' CPU ms per pair (main + workers)':48s} "
                    + " ".join(f"{med[str(w)][side + '_cpu_ms']:12.2f}" for w in args.workers)
                )
            print(
                f"{'  CPU per pair, torchgeo / saropt':48s} "
                + " ".join(f"{tg['cpu_speedup'][str(w)]:11.2f}x" for w in args.workers)
            )
            results["sen12ms_speedup_vs_torchgeo_same_files"] = tg["speedup"]
    if not args.skip_profile:
        prof = profile(paths)
        results["profile_ms"] = prof
        print("\nwhere the time goes (ms per call, one thread):")
        for k, v in prof.items():
            print(f"  {k:34s} {v:8.3f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
