"""One categorical palette for classes, on every map of the app (the canvas latent map, the
Train tab's live map, the AE-vs-VAE maps): the same class has the same colour everywhere.
Matplotlib's tab10, the palette most papers' latent plots use; more classes cycle."""

from __future__ import annotations

CLASS_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip


def class_colour(k: int) -> str:
    """The colour of class ``k`` (cycling beyond ten classes)."""
    return CLASS_COLOURS[int(k) % len(CLASS_COLOURS)]
