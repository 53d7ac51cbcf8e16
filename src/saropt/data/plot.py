"""A PNG grid of SAR-optical samples, for looking at what a reader returns."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np


def _to_display(t: Any, rgb: bool) -> np.ndarray:
    """A ``(C, H, W)`` float tensor/array as an ``(H, W)`` or ``(H, W, 3)`` float image in [0, 1]."""
    a = t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)
    a = a.astype(np.float32)
    if rgb and a.shape[0] >= 3:
        img = a[:3].transpose(1, 2, 0)
    else:
        img = a[0]
    finite = np.isfinite(img)
    if not finite.any():
        return np.zeros(img.shape, np.float32)
    lo, hi = np.percentile(img[finite], [1, 99]) if (img.min() < 0 or img.max() > 1) else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    return np.clip((np.nan_to_num(img, nan=lo) - lo) / (hi - lo), 0, 1)


def plot_samples(
    samples: Sequence[dict[str, Any]],
    path: str | os.PathLike[str],
    ncols: int = 4,
    title: str | None = None,
) -> None:
    """Write a grid of pairs: for each sample its SAR (grey) beside its optical image (RGB), id above.

    Values in [0, 1] are shown as they are; other ranges get a 1-99% percentile stretch. A sample with a
    ``label`` (matching pairs) shows it in the caption.

    Args:
        samples: sample dicts with ``sar``, ``opt`` and ``meta``.
        path: output PNG, written to a temporary name and renamed.
        ncols: pairs per row.
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n = max(1, len(samples))
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, 2 * ncols, figsize=(2.4 * 2 * ncols, 2.8 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for k, s in enumerate(samples):
        r, c = divmod(k, ncols)
        meta = s.get("meta", {})
        caption = str(meta.get("id", k))
        if "label" in s:
            caption += f" [{'pos' if int(s['label']) == 1 else 'neg'}]"
        ax_s, ax_o = axes[r, 2 * c], axes[r, 2 * c + 1]
        ax_s.imshow(_to_display(s["sar"], rgb=False), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        opt = _to_display(s["opt"], rgb=True)
        ax_o.imshow(opt, cmap="gray" if opt.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        ax_s.set_title(f"SAR {caption}"[:28], fontsize=7)
        ax_o.set_title("optical", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, out)
