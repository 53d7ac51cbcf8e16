"""Packed shards: a fast training format written from any reader.

PNG decoding costs about 1 ms per 256x256 pair and GeoTIFF opening a few tenths of a ms per file; at scale the
loader, not the GPU, sets the pace. :func:`pack` decodes a dataset once into uncompressed numpy shards of raw
values (uint8 stays uint8, SEN12MS dB stays float32: exact and small), and two readers serve them:

* :class:`PackedDataset`: map-style, random access through ``np.memmap`` (any sampler, any workers); the same
  sample dicts and ``meta`` as the source reader.
* :class:`PackedStream`: an ``IterableDataset`` that streams whole shards sequentially (shuffled shard order
  and shuffled samples within each shard per epoch), shards split between ``DataLoader`` workers (and
  ``torch.distributed`` ranks), yielding ready batches written straight into shared memory. Use it with
  ``DataLoader(stream, batch_size=None, num_workers=N)``.

Layout::

    SHARDS_DIR/manifest.json            format, count, per-array shape/dtype/scaling/bands, shards + sha256
    SHARDS_DIR/index.parquet            one row per pair: shard, offset, id, scene, split, window, bounds, crs
    SHARDS_DIR/shard-00000.sar.npy      (n, C, H, W) raw SAR values of shard 0
    SHARDS_DIR/shard-00000.opt.npy      (n, C, H, W) raw optical values
    SHARDS_DIR/shard-00000.<key>.npy    extra arrays (e.g. ``lc``)

The folder is written under a temporary name and renamed when complete; ``manifest.json`` marks a complete
pack.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from saropt.data.base import PairDataset, PairRecord, Sample, Transform
from saropt.data.scaling import Scaling
from saropt.errors import CorruptFileError, DatasetNotFoundError, InputError, OutputExistsError

logger = logging.getLogger(__name__)

PACKED_FORMAT = "saropt-packed"
MANIFEST = "manifest.json"
INDEX = "index.parquet"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def pack(
    dataset: PairDataset,
    out_dir: str | os.PathLike[str],
    *,
    shard_size: int = 1024,
    overwrite: bool = False,
    skip_corrupt: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Decode every pair of a reader once and write packed shards.

    Args:
        dataset: any reader; all pairs must have the same array shapes and dtypes.
        out_dir: the shard folder to create.
        shard_size: pairs per shard (1024 pairs of 256x256 SAR + RGB = 256 MiB).
        overwrite: replace an existing packed folder (never a folder saropt did not write).
        skip_corrupt: leave out pairs whose files cannot be decoded (logged) instead of failing.
        progress: called as ``progress(done, total)`` after each pair.

    Returns:
        The shard folder.

    Raises:
        OutputExistsError: ``out_dir`` exists and is not a packed folder, or ``overwrite`` is false.
        InputError: pairs differ in shape or dtype, or ``shard_size`` < 1.
        CorruptFileError: a file cannot be decoded and ``skip_corrupt`` is false.
    """
    import pandas as pd

    if shard_size < 1:
        raise InputError(f"shard_size must be >= 1, got {shard_size}")
    out = Path(out_dir)
    if out.exists():
        if not (out / MANIFEST).is_file():
            raise OutputExistsError(f"{out} exists and is not a packed saropt folder; choose a new folder")
        if not overwrite:
            raise OutputExistsError(
                f"{out} already holds packed shards; pass overwrite=True (--overwrite) to replace"
            )
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    saved_skip = dataset.skip_corrupt
    dataset.skip_corrupt = False
    try:
        specs: dict[str, dict[str, Any]] = {}
        buffers: dict[str, np.ndarray] = {}
        rows: list[dict[str, Any]] = []
        shards: list[dict[str, Any]] = []
        fill = 0
        total = len(dataset)

        def flush() -> None:
            nonlocal fill
            if fill == 0:
                return
            name = f"shard-{len(shards):05d}"
            files = {}
            for key, buf in buffers.items():
                path = tmp / f"{name}.{key}.npy"
                np.save(path, buf[:fill])
                files[key] = _sha256(path)
            shards.append({"name": name, "count": fill, "sha256": files})
            fill = 0

        for i in range(total):
            try:
                raw = dataset.load_raw(i)
            except CorruptFileError as exc:
                if not skip_corrupt:
                    raise
                logger.warning("leaving out corrupt pair %s: %s", dataset.records[i].id, exc)
                continue
            meta = raw.pop("meta")
            if not specs:
                scal = dataset.scalings()
                for key, arr in raw.items():
                    specs[key] = {
                        "shape": list(arr.shape),
                        "dtype": str(arr.dtype),
                        "scaling": scal[key].to_dict() if key in scal else None,
                    }
                    buffers[key] = np.empty((shard_size, *arr.shape), dtype=arr.dtype)
                specs["sar"]["bands"] = list(dataset.sar_bands)
                specs["opt"]["bands"] = list(dataset.opt_bands)
            for key, arr in raw.items():
                spec = specs.get(key)
                if spec is None or list(arr.shape) != spec["shape"] or str(arr.dtype) != spec["dtype"]:
                    raise InputError(
                        f"pair {meta['id']}: {key} is {arr.shape} {arr.dtype}, but earlier pairs are "
                        f"{spec and tuple(spec['shape'])} {spec and spec['dtype']}; pack one size at a time "
                        f"(e.g. OSdataset size=256) or crop first"
                    )
                buffers[key][fill] = arr
            rec = dataset.records[i]
            rows.append(_index_row(rec, len(shards), fill))
            fill += 1
            if fill == shard_size:
                flush()
            if progress is not None:
                progress(i + 1, total)
        flush()
        if not rows:
            raise InputError("nothing to pack: the dataset has no readable pairs")
        pd.DataFrame(rows).to_parquet(tmp / INDEX, index=False)
        manifest = {
            "format": PACKED_FORMAT,
            "version": 1,
            "source": dataset.name,
            "count": len(rows),
            "shard_size": shard_size,
            "arrays": specs,
            "shards": shards,
            "index": INDEX,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        dataset.skip_corrupt = saved_skip
    logger.info("packed %d pairs into %d shards in %s", len(rows), len(shards), out)
    return out


def _index_row(rec: PairRecord, shard: int, offset: int) -> dict[str, Any]:
    w = rec.window or (None, None, None, None)
    b = rec.bounds or (None, None, None, None)
    extra = {
        k: v
        for k, v in rec.extra.items()
        if isinstance(v, (str, int, float, bool)) and not k.endswith("_path")
    }
    return {
        "shard": shard,
        "offset": offset,
        "id": rec.id,
        "scene": rec.scene,
        "split": rec.split,
        "col_off": w[0],
        "row_off": w[1],
        "width": w[2],
        "height": w[3],
        "minx": b[0],
        "miny": b[1],
        "maxx": b[2],
        "maxy": b[3],
        "crs": rec.crs or "",
        "extra": json.dumps(extra, sort_keys=True),
    }


def read_manifest(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a packed folder.

    Raises:
        DatasetNotFoundError: no ``manifest.json`` (not a packed folder, or an unfinished pack).
        CorruptFileError: unreadable manifest.
    """
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{root} is not a packed saropt folder (no {MANIFEST}); "
            "create one with: saropt data pack FORMAT ROOT -o DIR"
        )
    try:
        doc = json.loads(path.read_text())
    except ValueError as exc:
        raise CorruptFileError(f"cannot read {path}: {exc}") from None
    if doc.get("format") != PACKED_FORMAT:
        raise CorruptFileError(f"{path} is not a saropt packed manifest")
    return doc  # type: ignore[no-any-return]


def _records(root: Path, manifest: dict[str, Any]) -> list[PairRecord]:
    import math

    import pandas as pd

    df = pd.read_parquet(root / manifest.get("index", INDEX))
    recs = []
    names = [s["name"] for s in manifest["shards"]]

    def num(v: Any) -> Any:
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else v

    for row in df.itertuples(index=False):
        win = (
            None
            if num(row.col_off) is None
            else (int(row.col_off), int(row.row_off), int(row.width), int(row.height))
        )
        bnd = (
            None
            if num(row.minx) is None
            else (float(row.minx), float(row.miny), float(row.maxx), float(row.maxy))
        )
        extra = json.loads(row.extra) if isinstance(row.extra, str) else {}
        extra.update({"shard": int(row.shard), "offset": int(row.offset)})
        recs.append(
            PairRecord(
                id=str(row.id),
                scene=str(row.scene),
                sar=(names[int(row.shard)],),
                opt=(names[int(row.shard)],),
                split=str(row.split),
                window=win,
                bounds=bnd,
                crs=str(row.crs) or None,
                extra=extra,
            )
        )
    return recs


class _Shards:
    """Lazily opened memmaps of a packed folder (re-opened after pickling, e.g. in each worker)."""

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root = root
        self.names = [s["name"] for s in manifest["shards"]]
        self.keys = list(manifest["arrays"])
        self._mm: dict[tuple[int, str], np.ndarray] = {}

    def get(self, shard: int, key: str) -> np.ndarray:
        mm = self._mm.get((shard, key))
        if mm is None:
            path = self.root / f"{self.names[shard]}.{key}.npy"
            try:
                mm = np.load(path, mmap_mode="r")
            except FileNotFoundError:
                raise DatasetNotFoundError(f"packed shard {path} is missing; re-pack the dataset") from None
            except ValueError as exc:
                raise CorruptFileError(f"cannot read packed shard {path}: {exc}") from None
            self._mm[(shard, key)] = mm
        return mm

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_mm"] = {}
        return state


class PackedDataset(PairDataset):
    """Random access to packed shards, with the source reader's sample format and scaling.

    Args:
        root: the packed folder.
        split: keep one split (``None``/``"all"``: every pair).
        transforms: callable applied to each sample dict.
        split_file: a frozen split replacing the packed ``split`` column.

    Raises:
        DatasetNotFoundError: not a packed folder, or a shard is missing.
        InputError: an unknown split.
    """

    name: ClassVar[str] = "packed"

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str | None = None,
        *,
        transforms: Transform | None = None,
        split_file: Any = None,
    ) -> None:
        from saropt.data.splits import select_split

        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        arrays = self.manifest["arrays"]
        self.sar_scaling = Scaling.from_dict(arrays["sar"]["scaling"])
        self.opt_scaling = Scaling.from_dict(arrays["opt"]["scaling"])
        self.sar_bands = tuple(arrays["sar"].get("bands", ()))
        self.opt_bands = tuple(arrays["opt"].get("bands", ()))
        self.extra_keys = [k for k in arrays if k not in ("sar", "opt")]
        self.source = str(self.manifest.get("source", ""))
        self.shards = _Shards(self.root, self.manifest)
        records = select_split(_records(self.root, self.manifest), split, split_file, f"packed {self.root}")
        super().__init__(records, transforms=transforms)

    def _row(self, rec: PairRecord, key: str) -> np.ndarray:
        return np.array(self.shards.get(rec.extra["shard"], key)[rec.extra["offset"]])

    def _read_sar(self, rec: PairRecord) -> np.ndarray:
        return self._row(rec, "sar")

    def _read_opt(self, rec: PairRecord) -> np.ndarray:
        return self._row(rec, "opt")

    def _read_extra(self, rec: PairRecord) -> dict[str, np.ndarray]:
        return {k: self._row(rec, k) for k in self.extra_keys}

    def _extra_meta(self, rec: PairRecord) -> dict[str, object]:
        return {k: v for k, v in rec.extra.items() if k not in ("shard", "offset")}

    def verify(self) -> list[str]:
        """Shard files whose SHA-256 does not match the manifest (empty when the pack is intact)."""
        bad = []
        for s in self.manifest["shards"]:
            for key, digest in s["sha256"].items():
                path = self.root / f"{s['name']}.{key}.npy"
                if not path.is_file() or _sha256(path) != digest:
                    bad.append(str(path))
        return bad


class PackedStream(IterableDataset):  # type: ignore[type-arg]
    """Stream packed shards sequentially, split between workers, as ready batches.

    Each epoch (``set_epoch``) shuffles the shard order and the samples inside each shard (with ``shuffle``),
    deterministically from ``(seed, epoch)``. Shards go round-robin to ``torch.distributed`` ranks (when
    initialised) and then to ``DataLoader`` workers, so every sample is seen once per epoch across workers (a
    worker's last batch may be short). Batches are ``{"sar": (B, C, H, W), "opt": ..., "meta": {"id": [...],
    "scene": [...], "split": [...], "index": LongTensor}}``; float batches are written directly into shared
    memory, so handing them to the main process costs no copy.

    Args:
        root: the packed folder.
        batch_size: samples per batch; ``None`` yields single samples (then let the DataLoader batch them).
        shuffle: shuffle shard order and samples within shards.
        seed: random seed.
        split: keep one split.
        as_float: scale to float32 with the source's scaling; ``False`` yields raw tensors (e.g. uint8: 4x
            less memory traffic; scale on the GPU with :meth:`scale`).
        transforms: callable applied to each yielded batch (or sample).
        drop_last: drop each worker's last short batch.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        batch_size: int | None = 64,
        *,
        shuffle: bool = True,
        seed: int = 0,
        split: str | None = None,
        as_float: bool = True,
        transforms: Transform | None = None,
        drop_last: bool = False,
    ) -> None:
        if batch_size is not None and batch_size < 1:
            raise InputError(f"batch_size must be >= 1 or None, got {batch_size}")
        self.dataset = PackedDataset(root, split=split)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = int(seed)
        self.as_float = as_float
        self.transforms = transforms
        self.drop_last = drop_last
        self.epoch = 0
        recs = self.dataset.records
        shard_of = np.asarray([r.extra["shard"] for r in recs], dtype=np.int64)
        offs = np.asarray([r.extra["offset"] for r in recs], dtype=np.int64)
        self._by_shard: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for s in np.unique(shard_of):
            sel = np.flatnonzero(shard_of == s)
            self._by_shard[int(s)] = (offs[sel], sel)

    def __len__(self) -> int:
        """Number of samples (not batches) per epoch."""
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that seeds the shuffle (call before iterating; workers see it when they start)."""
        self.epoch = int(epoch)

    def scale(self, batch: Sample) -> Sample:
        """Scale a raw batch (``as_float=False``) to float32 where it is (CPU: one numpy pass; GPU: torch)."""
        out = dict(batch)
        for key, sc in (("sar", self.dataset.sar_scaling), ("opt", self.dataset.opt_scaling)):
            t = batch[key]
            if t.device.type == "cpu":
                out[key] = torch.from_numpy(sc.apply(t.numpy()))
                continue
            is_float = t.is_floating_point()
            t = t.to(torch.float32)
            if not sc.to_dict().get("identity"):
                lo = torch.tensor(sc.low, dtype=torch.float32, device=t.device).reshape(-1, 1, 1)
                inv = (
                    torch.from_numpy(
                        (1.0 / (np.asarray(sc.high, np.float32) - np.asarray(sc.low, np.float32))).astype(
                            np.float32
                        )
                    )
                    .to(t.device)
                    .reshape(-1, 1, 1)
                )
                t = (t - lo).mul_(inv) if bool((lo != 0).any()) else t.mul_(inv)
                if sc.clip:
                    t = t.clamp_(0.0, 1.0)
            out[key] = torch.nan_to_num_(t, nan=sc.nan_value) if is_float else t
        return out

    def loader(
        self, num_workers: int = 2, device: str | torch.device | None = None, **dataloader_kwargs: Any
    ) -> "ScaledLoader":
        """The fastest way to iterate: workers ship raw batches (uint8 stays uint8), scaled after transfer.

        Moving float32 batches between processes costs shared-memory allocation and page faults for 4x the
        bytes; shipping raw values and scaling in the consumer (on ``device``, e.g. the GPU) avoids it.
        Batches come out as with ``as_float=True`` (the transforms run after scaling).

        Args:
            num_workers: DataLoader workers.
            device: where to scale (and leave) the batches; default CPU.
            **dataloader_kwargs: more DataLoader arguments (``prefetch_factor``, ``pin_memory``...).

        Returns:
            An iterable of float batches (re-iterable once per epoch; call :meth:`set_epoch` in between).
        """
        return ScaledLoader(self, num_workers, device, dataloader_kwargs)

    def _my_shards(self) -> list[int]:
        shards = sorted(self._by_shard)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(shards))
            shards = [shards[i] for i in order]
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
            shards = shards[rank::world]
        info = get_worker_info()
        if info is not None:
            shards = shards[info.id :: info.num_workers]
        return shards

    def _read(self, key: str, parts: list[tuple[int, np.ndarray]]) -> torch.Tensor:
        sh = self.dataset.shards
        n = sum(len(o) for _, o in parts)
        first = sh.get(parts[0][0], key)
        shape = (n, *first.shape[1:])
        scal = self.dataset.scalings().get(key)
        if self.as_float and scal is not None:
            out = torch.empty(shape, dtype=torch.float32)
            if get_worker_info() is not None:
                out.share_memory_()
            view = out.numpy()
            k = 0
            for s, offs in parts:
                raw = sh.get(s, key)[offs]
                scal.apply(raw, out=view[k : k + len(offs)])
                k += len(offs)
            return out
        arr = (
            np.concatenate([sh.get(s, key)[offs] for s, offs in parts])
            if len(parts) > 1
            else np.ascontiguousarray(sh.get(parts[0][0], key)[parts[0][1]])
        )
        if np.issubdtype(arr.dtype, np.integer) and key not in ("sar", "opt"):
            arr = arr.astype(np.int64)
        return torch.from_numpy(arr)

    def _batch(self, parts: list[tuple[int, np.ndarray, np.ndarray]]) -> Sample:
        recs = self.dataset.records
        sel = np.concatenate([p[2] for p in parts])
        loc = [(s, offs) for s, offs, _ in parts]
        batch: Sample = {key: self._read(key, loc) for key in self.dataset.shards.keys}
        batch["meta"] = {
            "id": [recs[i].id for i in sel],
            "scene": [recs[i].scene for i in sel],
            "split": [recs[i].split for i in sel],
            "index": torch.from_numpy(sel.astype(np.int64)),
        }
        return batch

    def __iter__(self) -> Iterator[Sample]:
        rng = np.random.default_rng([self.seed, self.epoch, (get_worker_info() or _W0).id])
        if self.batch_size is None:
            for s in self._my_shards():
                offs, sel = self._by_shard[s]
                order = rng.permutation(len(offs)) if self.shuffle else np.arange(len(offs))
                for k in order:
                    sample = self.dataset[int(sel[k])]
                    yield self.transforms(sample) if self.transforms else sample
            return
        pending: list[tuple[int, np.ndarray, np.ndarray]] = []
        have = 0
        bs = self.batch_size
        for s in self._my_shards():
            offs, sel = self._by_shard[s]
            order = rng.permutation(len(offs)) if self.shuffle else np.arange(len(offs))
            start = 0
            while start < len(order):
                take = order[start : start + bs - have]
                take = np.sort(take)  # sequential reads inside the shard
                pending.append((s, offs[take], sel[take]))
                have += len(take)
                start += len(take)
                if have == bs:
                    batch = self._batch(pending)
                    yield self.transforms(batch) if self.transforms else batch
                    pending, have = [], 0
        if pending and not self.drop_last:
            batch = self._batch(pending)
            yield self.transforms(batch) if self.transforms else batch


class _W0:
    id = 0


class ScaledLoader:
    """DataLoader over a raw :class:`PackedStream` that scales batches after they leave the workers."""

    def __init__(self, stream: PackedStream, num_workers: int, device: Any, kwargs: dict[str, Any]) -> None:
        import copy

        from torch.utils.data import DataLoader

        self.stream = stream
        raw = copy.copy(stream)
        raw.as_float = False
        raw.transforms = None
        self.device = torch.device(device) if device is not None else None
        kwargs.setdefault("persistent_workers", num_workers > 0)
        self._loader = DataLoader(raw, batch_size=None, num_workers=num_workers, **kwargs)
        self._raw = raw

    def __len__(self) -> int:
        return len(self.stream)

    def __iter__(self) -> Iterator[Sample]:
        self._raw.epoch = self.stream.epoch
        for batch in self._loader:
            if self.device is not None:
                batch = {
                    k: (v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v)
                    for k, v in batch.items()
                }
            batch = self.stream.scale(batch)
            yield self.stream.transforms(batch) if self.stream.transforms else batch
