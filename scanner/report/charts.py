"""The report's charts of the classes: the six features' histograms, and a scatter of two features (PNG)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from scanner.core.featuresets import PAPER
from scanner.report.classes import Classes, class_colour
from scanner.report.figures import figure_png

# The report draws the paper's six features: the first six columns of every feature set.
SHOWN = PAPER.names

HISTOGRAM_BINS = 50
# Values beyond these percentiles are gathered in the end bins, so one outlier
# does not squeeze every histogram into a single bar.
HISTOGRAM_RANGE_PERCENTILES = (0.1, 99.9)
SCATTER_POINTS_PER_CLASS = 20_000


# What is drawn, in absolute value: values near the float64 limits leave no span for bins or ticks (a range
# of 1e308 - -1e308 overflows); rows beyond are left out of the figures, and their captions say so.
DRAWN_AT_MOST = 1e100


def _drawable(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        drawn: np.ndarray = np.abs(values) <= DRAWN_AT_MOST
    return drawn


def _feature_range(values: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(values, HISTOGRAM_RANGE_PERCENTILES)
    if high <= low:
        pad = max(abs(low) * 0.01, 1e-9)
        low, high = low - pad, high + pad
    return float(low), float(high)


def histogram_figure(features: np.ndarray, classes: Classes, usable: np.ndarray, names: Sequence[str] = SHOWN) -> bytes:
    """The six features' histograms per class, as shares of each class (PNG): features' first six columns."""
    fig = Figure(figsize=(12, 6.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3)
    for f, (ax, name) in enumerate(zip(axes.ravel(), names[:6], strict=True)):
        column = features[:, f]
        finite = usable & np.isfinite(column)
        drawable = finite & _drawable(column)
        ax.set_title(name, fontsize=11)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.25)
        if not drawable.any():
            why = "no finite values" if not finite.any() else f"no values within ±{DRAWN_AT_MOST:g}"
            ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes)
            continue
        finite = drawable
        low, high = _feature_range(column[finite])
        edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
        for position, cls in enumerate(classes.names):
            values = np.clip(column[finite & (classes.of_row == cls)], low, high)
            if not len(values):
                continue
            hist, _ = np.histogram(values, bins=edges)
            colour = class_colour(cls, position)
            ax.stairs(hist / len(values), edges, fill=True, alpha=0.25, color=colour)
            ax.stairs(hist / len(values), edges, color=colour, linewidth=1.4, label=f"{cls} ({len(values):,})")
        if f == 0:
            ax.set_ylabel("share of class", fontsize=9)
    handles, names = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, names, loc="outside upper center", ncols=len(names), fontsize=9, frameon=False)
    return figure_png(fig, dpi=90)


def scatter_figure(
    features: np.ndarray,
    classes: Classes,
    usable: np.ndarray,
    axes_names: tuple[str, str],
    names: Sequence[str] = SHOWN,
) -> tuple[bytes, str]:
    """Two features against each other, per class, and a caption saying what is drawn (PNG)."""
    fx, fy = (list(names).index(n) for n in axes_names)
    fig = Figure(figsize=(7.5, 5.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    rng = np.random.default_rng(0)
    finite = usable & np.isfinite(features[:, fx]) & np.isfinite(features[:, fy])
    drawable = finite & _drawable(features[:, fx]) & _drawable(features[:, fy])
    too_far = int(np.sum(finite & ~drawable))
    finite = drawable
    parts = []
    for position, cls in enumerate(classes.names):
        rows = np.flatnonzero(finite & (classes.of_row == cls))
        if not len(rows):
            continue
        shown = (
            rows
            if len(rows) <= SCATTER_POINTS_PER_CLASS
            else np.sort(rng.choice(rows, SCATTER_POINTS_PER_CLASS, replace=False))
        )
        parts.append(f"{cls}: {len(shown):,} of {len(rows):,}")
        ax.scatter(
            features[shown, fx],
            features[shown, fy],
            s=16 if len(shown) < 2000 else 2,
            alpha=0.6,
            color=class_colour(cls, position),
            label=cls,
            rasterized=True,
            linewidths=0,
        )
    ax.set_xlabel(axes_names[0])
    ax.set_ylabel(axes_names[1])
    ax.grid(alpha=0.25)
    if parts:
        ax.legend(markerscale=3, fontsize=9)
    if not parts:
        return figure_png(fig, dpi=90), "No finite values to draw."
    caption = (
        f"Points drawn (a random sample where a class has more than {SCATTER_POINTS_PER_CLASS:,}): "
        + "; ".join(parts)
        + "."
        + (f" {too_far:,} rows with a value beyond ±{DRAWN_AT_MOST:g} are not drawn." if too_far else "")
    )
    return figure_png(fig, dpi=90), caption
