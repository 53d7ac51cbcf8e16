"""Near-duplicate patches: 64-bit DCT perceptual hashes and a fast greedy duplicate search.

A dataset built from overlapping scenes, repeated acquisitions or a scene listed twice contains the same
ground several times; near-duplicates across the train/test split inflate test scores. Each patch gets a
perceptual hash (pHash: the signs of the 8x8 lowest DCT frequencies of a 32x32 thumbnail relative to their
median) of its SAR and of its optical image; two patches are near-duplicates when the hashes differ in few
bits. Patches whose windows overlap in the same scene are *not* compared: their similarity comes from the
grid's overlap, which the user chose.

Hashes are unsigned 64-bit integers. Where a signed 64-bit column is needed (Parquet, pandas) they are stored
as int64 two's complement: :func:`to_int64` / :func:`to_uint64` convert, and every function here accepts both.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import cv2
import numpy as np

from saropt.errors import InputError
from saropt.io.windows import Window
from saropt.quality.prep import median

_MASK = (1 << 64) - 1
_HASH_SIZE = 8
_THUMB = 32


def to_int64(h: int) -> int:
    """A 64-bit hash as a signed int64 (two's complement), for Parquet/pandas columns."""
    h = int(h) & _MASK
    return h - (1 << 64) if h >= (1 << 63) else h


def to_uint64(h: int) -> int:
    """A 64-bit hash stored as int64 (or already unsigned) as an unsigned Python int in ``[0, 2**64)``."""
    return int(h) & _MASK


def phash(img: np.ndarray) -> int:
    """64-bit DCT perceptual hash of an image.

    The image (colour is averaged to grey) is reduced to 32x32 by area averaging, its 2-D DCT taken, and the
    8x8 lowest frequencies (DC included) compared with their median: bit ``i`` (row-major over the 8x8 block,
    most significant first) is 1 where the coefficient exceeds the median. Small radiometric changes, noise
    and compression leave most bits unchanged.

    Args:
        img: ``(H, W)`` or ``(H, W, C)`` image of any numeric type, at least 8x8 pixels.

    Returns:
        The hash as an unsigned Python int in ``[0, 2**64)``.

    Raises:
        InputError: for an image smaller than 8x8 or with an unsupported shape.
    """
    arr = np.asarray(img)
    if arr.ndim == 3:
        arr = arr.mean(axis=2, dtype=np.float32) if arr.shape[2] > 1 else arr[..., 0]
    if arr.ndim != 2 or arr.shape[0] < _HASH_SIZE or arr.shape[1] < _HASH_SIZE:
        raise InputError(f"phash needs an (H, W) or (H, W, C) image of at least 8x8 pixels, got {arr.shape}")
    thumb = cv2.resize(arr.astype(np.float32, copy=False), (_THUMB, _THUMB), interpolation=cv2.INTER_AREA)
    low = cv2.dct(thumb)[:_HASH_SIZE, :_HASH_SIZE].ravel()
    bits = low > median(low)
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes (signed or unsigned representation)."""
    return ((int(a) ^ int(b)) & _MASK).bit_count()


def _band_masks(max_hamming: int) -> list[tuple[int, int]]:
    """(shift, mask) of ``max_hamming + 1`` contiguous bit bands covering the 64 bits."""
    n_bands = max_hamming + 1
    edges = [round(64 * k / n_bands) for k in range(n_bands + 1)]
    return [(lo, (1 << (hi - lo)) - 1) for lo, hi in itertools.pairwise(edges) if hi > lo]


def find_near_duplicates(
    hashes: Sequence[int] | Sequence[Sequence[int]],
    groups: Sequence[str],
    windows: Sequence[Window],
    max_hamming: int,
    *,
    keep: Sequence[bool] | None = None,
) -> list[int | None]:
    """Greedy near-duplicate search in a fixed order.

    Patches are visited in the given (deterministic) order. A patch is a near-duplicate of an earlier patch
    that is still kept when all its hashes are within ``max_hamming`` bits of that patch's, unless both are in
    the same group (scene) and their windows overlap. Near-duplicates are not kept, so they never serve as a
    reference; of several matches the earliest is reported.

    Speed: multi-index hashing. By the pigeonhole principle two 64-bit hashes within ``m`` bits agree exactly
    on at least one of ``m + 1`` disjoint bit bands, so each patch is compared only with the kept patches
    sharing a band value with it (hash tables per band), not with all pairs.

    Convention:
        ``windows`` are SAR pixel windows (x = column, y = row) of each patch in its group's scene.

    Args:
        hashes: one 64-bit hash per patch, or a tuple of hashes per patch (e.g. ``(phash_sar, phash_opt)``:
            then every hash must be within ``max_hamming``). Signed int64 or unsigned representations.
        groups: group (scene pair) id of each patch.
        windows: window of each patch within its group.
        max_hamming: the largest Hamming distance that counts as a near-duplicate, 0..32.
        keep: optional per-patch flags; patches with ``False`` (rejected by other filters) are neither
            compared nor used as references and get ``None``.

    Returns:
        For each patch, the index of the kept patch it nearly duplicates, or ``None``.

    Raises:
        InputError: for sequences of different lengths, ragged hash tuples or ``max_hamming`` outside 0..32.
    """
    n = len(hashes)
    if len(groups) != n or len(windows) != n or (keep is not None and len(keep) != n):
        raise InputError(
            f"hashes ({n}), groups ({len(groups)}), windows ({len(windows)})"
            + (f" and keep ({len(keep)})" if keep is not None else "")
            + " must have the same length"
        )
    if isinstance(max_hamming, bool) or not 0 <= int(max_hamming) <= 32:
        raise InputError(f"max_hamming must be an integer in [0, 32], got {max_hamming}")
    max_hamming = int(max_hamming)
    if n == 0:
        return []
    first = hashes[0]
    k = len(first) if isinstance(first, (tuple, list, np.ndarray)) else 0
    try:
        if k:
            if any(not isinstance(h, (tuple, list, np.ndarray)) or len(h) != k for h in hashes):
                raise InputError(f"every patch needs {k} hashes like the first one")
            table = np.array([[to_uint64(x) for x in h] for h in hashes], dtype=np.uint64)  # type: ignore[union-attr]
        else:
            table = np.array([to_uint64(h) for h in hashes], dtype=np.uint64)[:, None]  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InputError(f"hashes must be 64-bit integers (or tuples of them): {exc}") from exc

    gid = np.array(_factorize(groups), dtype=np.int64)
    c0 = np.array([w.col_off for w in windows], dtype=np.int64)
    r0 = np.array([w.row_off for w in windows], dtype=np.int64)
    c1 = np.array([w.col_end for w in windows], dtype=np.int64)
    r1 = np.array([w.row_end for w in windows], dtype=np.int64)
    bands = _band_masks(max_hamming)
    keys = [((table[:, 0] >> np.uint64(shift)) & np.uint64(mask)).tolist() for shift, mask in bands]
    buckets: list[dict[int, list[int]]] = [{} for _ in bands]
    result: list[int | None] = [None] * n
    keep_flags = [True] * n if keep is None else [bool(x) for x in keep]

    for i in range(n):
        if not keep_flags[i]:
            continue
        lists = [bucket[key[i]] for bucket, key in zip(buckets, keys) if key[i] in bucket]
        if lists:
            cands = np.fromiter(itertools.chain.from_iterable(lists), dtype=np.int64)
            close = (np.bitwise_count(table[cands] ^ table[i]) <= max_hamming).all(axis=1)
            # Overlapping neighbours in the same scene are similar by design of the grid: not compared.
            overlap = (
                (gid[cands] == gid[i])
                & (c0[cands] < c1[i])
                & (c0[i] < c1[cands])
                & (r0[cands] < r1[i])
                & (r0[i] < r1[cands])
            )
            hits = cands[close & ~overlap]
            if hits.size:
                result[i] = int(hits.min())
                continue
        for bucket, key in zip(buckets, keys):
            bucket.setdefault(key[i], []).append(i)
    return result


def _factorize(values: Sequence[str]) -> list[int]:
    ids: dict[str, int] = {}
    return [ids.setdefault(v, len(ids)) for v in values]
