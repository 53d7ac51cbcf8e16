"""Learning-curve figure of a matching training run."""

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
