"""Figures of matching runs: learning curves, and where each method localises each scene."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence


def plot_learning_curve(
    history: Sequence[dict[str, Any]],
    steps: Sequence[tuple[float, float]],
    path: str | os.PathLike[str],
    title: str = "",
    train_label: str = "train",
    val_label: str = "validation",
) -> Path:
    """Write a two-panel PNG: losses (left) and validation ROC-AUC / accuracy (right) against epochs.

    Args:
        history: one dict per epoch with ``epoch``, ``train_loss`` and optionally ``val_loss``,
            ``val_roc_auc``, ``val_roc_auc_hard``, ``val_accuracy``, ``val_accuracy_calibrated``.
        steps: ``(fractional epoch, running training loss)`` points logged during training.
        path: output PNG (written to a temporary name, then renamed).
        title: figure title.
        train_label: legend name of the training loss (say what it sums when it differs from validation's).
        val_label: legend name of the validation loss.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out = Path(path)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    if steps:
        xs, ys = zip(*steps)
        ax1.plot(xs, ys, color="0.75", lw=0.8, label=f"{train_label} (running)")
    ep = [h["epoch"] for h in history]
    if history:
        train = [h["train_loss"] for h in history]
        ax1.plot(ep, train, "o-", color="C0", label=f"{train_label} (epoch mean)")
        if any(h.get("val_loss") is not None for h in history):
            ax1.plot(ep, [h.get("val_loss") for h in history], "s-", color="C1", label=val_label)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.grid(alpha=0.3)
    if ax1.get_legend_handles_labels()[0]:
        ax1.legend(fontsize=8)
    for key, label, c in (
        ("val_roc_auc", "val ROC-AUC", "C2"),
        ("val_roc_auc_hard", "val ROC-AUC (hard negatives)", "C5"),
        ("val_accuracy", "val accuracy (default threshold)", "C3"),
        ("val_accuracy_calibrated", "val accuracy (calibrated)", "C4"),
        ("val_cmr_1px", "val localisation within 1 px", "C6"),
        ("val_cmr_3px", "val localisation within 3 px", "C7"),
    ):
        if any(h.get(key) is not None for h in history):
            ax2.plot(ep, [h.get(key) for h in history], "o-", color=c, label=label)
    ax2.set_xlabel("epoch")
    ax2.set_ylim(0.0 if any(h.get("val_cmr_1px") is not None for h in history) else 0.4, 1.01)
    ax2.grid(alpha=0.3)
    if ax2.get_legend_handles_labels()[0]:
        ax2.legend(fontsize=8, loc="lower right")
    else:
        ax2.text(0.5, 0.5, "no validation split", ha="center", va="center", transform=ax2.transAxes)
    ax2.set_title("validation (balanced pairs unless marked hard)", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, out)
    return out


def plot_scene_offsets(
    localisation: dict[str, dict[str, Any]],
    path: str | os.PathLike[str],
    shared: dict[str, Sequence[float]] | None = None,
    title: str = "",
) -> Path:
    """Write a PNG with one panel per scene: each method's median localisation error there, as an arrow.

    Arrows of every method pointing the same way, 1 px or more long, mean the scene's truth is off (those
    scenes, ``shared``, get a red title); arrows that differ are the methods'.

    Args:
        localisation: ``{method: figures}`` of the localisation protocol, each with ``scene_offsets``
            (``{scene: [dx, dy, templates]}``, :func:`saropt.matching.metrics.scene_offsets`).
        path: output PNG (written to a temporary name, then renamed).
        shared: ``{scene: (dx, dy)}`` of :func:`saropt.matching.metrics.shared_scene_offsets`.
        title: figure title.

    Returns:
        The path written.

    Raises:
        InputError: no method carries per-scene offsets (scenes unknown, or no localisation protocol).

    Convention:
        ``dx`` to the right, ``dy`` down (image rows), in native pixels; the circle is 1 px.
    """
    import math

    import matplotlib

    from saropt.errors import InputError

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    methods = {m: f["scene_offsets"] for m, f in localisation.items() if f.get("scene_offsets")}
    if not methods:
        raise InputError("no per-scene localisation errors to draw: the patches' scenes are unknown")
    scenes = sorted({s for off in methods.values() for s in off})
    shared = shared or {}
    cols = min(len(scenes), 6)
    rows = math.ceil(len(scenes) / cols)
    lim = max(2.0, max(abs(v) for off in methods.values() for o in off.values() for v in o[:2]) + 0.5)
    width = max(7.0, 2.2 * cols + 1.6)  # room for the title and the legend with one scene
    fig, axes = plt.subplots(rows, cols, figsize=(width, 2.2 * rows + 0.5), squeeze=False)
    for ax, scene in zip(axes.flat, scenes):
        ax.add_patch(plt.Circle((0, 0), 1.0, fill=False, color="0.6", lw=0.8, ls="--"))
        ax.axhline(0, color="0.85", lw=0.6)
        ax.axvline(0, color="0.85", lw=0.6)
        n = 0
        for k, (m, off) in enumerate(methods.items()):
            if scene not in off:
                continue
            dx, dy, n = off[scene]
            ax.plot([0, dx], [0, dy], "-", color=f"C{k}", lw=1.2, alpha=0.8)
            # rings shrink method by method, so methods that agree stay visible one inside the other
            ax.plot([dx], [dy], "o", color=f"C{k}", ms=max(3, 11 - 2.5 * k), mfc="none", mew=1.6, label=m)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(lim, -lim)  # rows grow downwards, as in the image
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
        ax.set_xlabel("dx (px)", fontsize=7, labelpad=1)
        ax.set_ylabel("dy (px, down)", fontsize=7, labelpad=1)
        ax.set_title(f"{scene} ({int(n)} templates)", fontsize=8, color="C3" if scene in shared else "black")
    for ax in list(axes.flat)[len(scenes):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8, title="method", title_fontsize=8)
    default = "median localisation error per scene, px (red title: every method off the same way)"
    fig.suptitle(title or default, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1 - 1.4 / width, 0.95))
    out = Path(path)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, out)
    return out
