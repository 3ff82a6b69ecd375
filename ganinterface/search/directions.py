"""Attribute directions in W from classifier-labelled samples (mean differences)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ganinterface.engine.directions import Direction, mean_difference, model_hash
from ganinterface.models.base import GeneratorBase
from ganinterface.search.samples import CONFIDENT, Samples


def attribute_directions(generator: GeneratorBase, samples: Samples,
                         attributes: dict[str, Sequence[str]]) -> list[Direction]:
    """Mean-difference directions: mouth open, hair band, and one per hair colour."""
    directions = []
    digest = model_hash(generator)
    ws = samples.ws[:, 0]  # rows are equal before edits: W space

    def make(name: str, positive: np.ndarray, negative: np.ndarray, how: str) -> None:
        if len(positive) < 2 or len(negative) < 2:
            return
        directions.append(Direction(mean_difference(ws[positive], ws[negative]), name=name,
                                    model_hash=digest,
                                    provenance={"method": "mean w of samples the classifier reads "
                                                          f"{how} minus the mean of the others",
                                                "positives": int(len(positive)),
                                                "negatives": int(len(negative)),
                                                "seeds": [samples.seeds[0], samples.seeds[-1]]}))

    make("mouth open", samples.with_state("mouth_open", 1), samples.with_state("mouth_open", 0),
         "with an open mouth")
    make("hair band", samples.with_state("hair_band", 1), samples.with_state("hair_band", 0),
         "with a hair band")
    colours = attributes["hair_colour"]
    read = samples.probabilities["hair_colour"]
    for index, colour in enumerate(colours):
        positive = np.flatnonzero(read[:, index] >= CONFIDENT)
        negative = np.flatnonzero(read[:, index] < 1 - CONFIDENT)
        make(f"hair {colour}", positive, negative, f"with {colour} hair")
    return directions


def direction_stem(name: str) -> str:
    return name.replace(" ", "-")
