"""The artefacts an edit can leave that flip rate and locality do not see, per skin tone or hair
colour (as the classifier reads the unedited portrait): a patch of lighter or darker skin where a
mouth was closed, a seam where a hair band was removed (``metrics.skin_patch``, ``metrics.seam``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ganinterface.search.metrics import seam, skin_patch

ARTEFACT_AIM = 3.0  # CIEDE2000: below it most observers see no patch or seam

# artefact -> (the attribute its portraits are grouped by, the per-portrait measure)
MEASURES = {"skin patch": ("skin_tone", skin_patch), "seam": ("hair_colour", seam)}


def artefact_scores(artefact: str, before: np.ndarray, after: np.ndarray,
                    regions: Sequence[np.ndarray], groups: Sequence[str]) -> dict[str, Any]:
    """Mean CIEDE2000 of ``artefact`` over the portraits of each group (those it can be measured
    on), and the worst group's mean."""
    attribute, measure = MEASURES[artefact]
    values: dict[str, list[float]] = {}
    for b, a, region, group in zip(before, after, regions, groups):
        value = measure(b, a, region)
        if np.isfinite(value):
            values.setdefault(group, []).append(value)
    means = {group: round(float(np.mean(v)), 2) for group, v in sorted(values.items())}
    return {"artefact": artefact, "by": attribute, "groups": means,
            "counts": {group: len(v) for group, v in sorted(values.items())},
            "worst": max(means.values(), default=float("nan"))}
