"""Attribute directions from classifier-labelled samples, by three methods, and choosing among them.

* mean difference: mean w of the samples read with the attribute minus the mean of the others;
* conditional boundary: the normal of a logistic boundary for the attribute in W with the other
  attributes' boundary normals projected out (InterFaceGAN's conditional manipulation), applied to
  the w rows where it keeps the other attributes best;
* style channels: offsets of the few modulation styles whose change the classifier reads most as
  the attribute and least as anything else (its gradients on the samples), each by one spread of
  that style over the samples;
* learnt style offsets: two-sided, each side learnt on the samples it must move (the classifier's
  reading of the other state up, every other attribute's reading kept, an L1 penalty), the
  largest offsets kept; removing a band takes other channels than adding one.

``DirectionTrials`` scores each candidate on tuning seeds, each way, at the amount that clears
both aims (flip, preservation) by the most; ``choose_direction`` keeps the one that meets them on
the most ways, then clears them by the most its worse way.  Amount 1 of a W direction moves the negatives' mean to the positives'
mean along it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from ganinterface.demo.classifier import AttributeClassifier
from ganinterface.engine.directions import (Direction, DirectionError, StyleDirection,
                                            boundary_normal, conditioned, mean_difference)
from ganinterface.engine.kinds import StyleChannelEdit
from ganinterface.engine.scene import Recipe
from ganinterface.models.base import GeneratorBase
from ganinterface.search.metrics import flip_rate, preservation
from ganinterface.search.samples import CONFIDENT, Samples
from ganinterface.search.tuning import TuningRenderer

AnyDirection = Direction | StyleDirection
MIN_CLASS = 10  # confident samples a class needs on each side before its boundary is fitted
ROW_RANGES = ((0, None), (0, 5), (4, None))  # w rows a W direction may move
STYLE_COUNTS = (4, 8, 12, 16, 24, 32)  # style channels a style-space direction may offset
AMOUNTS = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0)  # the matching ladder
GRADIENT_BATCH = 16
GRADIENT_SAMPLES = 160  # samples (half with the attribute) the classifier's gradients are averaged on
FLIP_AIM, PRESERVATION_AIM = 0.90, 0.95  # issue 19: a direction flips 90% and keeps 95% of the rest
GIVE_UP_PRESERVATION = 0.5  # a larger amount is not tried once preservation falls below this
LEARNT_STEPS = 300  # Adam steps learning one side of a learnt style direction
LEARNT_BATCH = 24
LEARNT_RATE = 0.05  # in units of each style's spread, falling to 0 along a cosine (a constant rate
# left each run's offsets where its last noisy batches put them: margins -0.1 or +1.5 by chance)
KEEP_WEIGHT = 3.0  # the other attributes' readings kept (KL from before), against the attribute's
SPARSITY = 0.002  # L1 weight on the offsets, in units of each style's spread
LEARNT_COUNTS = (8, 16, 32, 64)  # largest learnt offsets a side keeps


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
    """A direction's name, its attribute, and the samples read with and without it."""

    name: str
    attribute: str
    positive: np.ndarray
    negative: np.ndarray
    state: int = 1  # the attribute's class index the positives are in


def attribute_splits(samples: Samples, attributes: dict[str, Sequence[str]]) -> list[Split]:
    """Mouth open, hair band, and one per hair colour (that colour against the rest)."""
    splits = [Split("mouth open", "mouth_open", samples.with_state("mouth_open", 1),
                    samples.with_state("mouth_open", 0)),
              Split("hair band", "hair_band", samples.with_state("hair_band", 1),
                    samples.with_state("hair_band", 0))]
    read = samples.probabilities["hair_colour"]
    for index, colour in enumerate(attributes["hair_colour"]):
        splits.append(Split(f"hair {colour}", "hair_colour", np.flatnonzero(read[:, index] >= CONFIDENT),
                            np.flatnonzero(read[:, index] < 1 - CONFIDENT), index))
    return [s for s in splits if len(s.positive) >= 2 and len(s.negative) >= 2]


def _provenance(method: str, split: Split, samples: Samples, **more) -> dict:
    return {"method": method, "positives": int(len(split.positive)),
            "negatives": int(len(split.negative)), "seeds": [samples.seeds[0], samples.seeds[-1]],
            **more}


# ---- W: mean difference and conditional boundaries ---------------------------------------------

def mean_difference_direction(samples: Samples, split: Split, digest: str) -> Direction:
    ws = samples.ws[:, 0]  # rows are equal before edits: W space
    how = split.name.removeprefix("hair ") + " hair" if split.attribute == "hair_colour" else split.name
    return Direction(mean_difference(ws[split.positive], ws[split.negative]), name=split.name,
                     model_hash=digest,
                     provenance=_provenance(f"mean w of samples the classifier reads with {how} "
                                            "minus the mean of the others", split, samples))


def other_normals(samples: Samples, attribute: str) -> np.ndarray:
    """(K, w_dim): boundary normals of every other attribute (one per class of a multi-class one)
    with at least MIN_CLASS confident samples on each side."""
    ws = samples.ws[:, 0]
    normals = []
    for name, read in samples.probabilities.items():
        if name == attribute:
            continue
        classes = [1] if read.shape[1] == 2 else range(read.shape[1])
        for index in classes:
            positive, negative = read[:, index] >= CONFIDENT, read[:, index] < 1 - CONFIDENT
            if positive.sum() >= MIN_CLASS and negative.sum() >= MIN_CLASS:
                used = positive | negative
                normals.append(boundary_normal(ws[used], positive[used].astype(int)))
    return np.stack(normals) if normals else np.zeros((0, ws.shape[1]), np.float32)


def conditional_boundary(samples: Samples, split: Split, others: np.ndarray) -> np.ndarray:
    """The split's boundary normal with ``others`` projected out, scaled so that amount 1 moves the
    negatives' mean to the positives' mean along it."""
    ws = samples.ws[:, 0]
    used = np.concatenate([split.positive, split.negative])
    labels = np.r_[np.ones(len(split.positive)), np.zeros(len(split.negative))]
    unit = conditioned(boundary_normal(ws[used], labels), others)
    gap = float((ws[split.positive].mean(axis=0) - ws[split.negative].mean(axis=0)) @ unit)
    return (unit * gap).astype(np.float32)


def boundary_directions(samples: Samples, split: Split, digest: str) -> list[Direction]:
    """The conditional boundary on each of ``ROW_RANGES``."""
    vector = conditional_boundary(samples, split, other_normals(samples, split.attribute))
    return [Direction(vector, first, last, split.name, digest, _provenance(
        "logistic boundary in W with the other attributes' boundary normals projected out",
        split, samples)) for first, last in ROW_RANGES]


# ---- style space --------------------------------------------------------------------------------

def style_sensitivity(generator: GeneratorBase, classifier: AttributeClassifier, ws: np.ndarray,
                      attribute: str, state: int, layers: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per style channel of ``layers`` (concatenated): the mean gradient of the classifier's log-odds
    of ``attribute`` being ``state``, and the mean absolute gradient of the log-probability of
    every other attribute's current reading, over the samples ``ws`` (N, num_ws, w_dim)."""
    sizes = generator.style_sizes()
    toward, elsewhere = np.zeros(sum(sizes[n] for n in layers)), np.zeros(sum(sizes[n] for n in layers))
    classifier.eval()
    for start in range(0, len(ws), GRADIENT_BATCH):
        batch = torch.from_numpy(ws[start:start + GRADIENT_BATCH]).to(generator.w_avg.device)
        offsets = {n: torch.zeros(len(batch), sizes[n], device=batch.device, requires_grad=True)
                   for n in layers}
        with torch.enable_grad():
            image = generator.synthesize(batch, style_offsets=offsets, noise_mode="const").image
            logits = {k: F.log_softmax(v, dim=1) for k, v in classifier(image.clamp(-1, 1).cpu()).items()}
            target = logits[attribute]
            odds = (target[:, state] - torch.logsumexp(_without(target, state), dim=1)).sum()
            toward += _gradient(odds, offsets).sum(axis=0)
            for name, read in logits.items():
                if name != attribute:
                    kept = read.gather(1, read.argmax(dim=1, keepdim=True)).sum()
                    elsewhere += np.abs(_gradient(kept, offsets)).sum(axis=0)
    return toward / len(ws), elsewhere / len(ws)


def _without(logits: torch.Tensor, column: int) -> torch.Tensor:
    return torch.cat([logits[:, :column], logits[:, column + 1:]], dim=1)


def _gradient(value: torch.Tensor, offsets: dict[str, torch.Tensor]) -> np.ndarray:
    grads = torch.autograd.grad(value, list(offsets.values()), retain_graph=True)
    return torch.cat(grads, dim=1).detach().cpu().numpy()


def style_spreads(generator: GeneratorBase, ws: np.ndarray, layers: Sequence[str]) -> np.ndarray:
    """Per style channel of ``layers``: its standard deviation over the samples ``ws``."""
    parts = []
    with torch.no_grad():
        for name in layers:
            index = generator.layer_index(name)
            row = generator.layers[index].w_indices[0]
            affine = generator.get_submodule(f"synthesis.{name}.affine")
            parts.append(affine(torch.from_numpy(ws[:, row]).to(generator.w_avg.device)).std(dim=0).cpu())
    return torch.cat(parts).numpy()


def chosen_channels(toward: np.ndarray, elsewhere: np.ndarray, spread: np.ndarray, count: int,
                    where: Sequence[tuple[str, int]]) -> tuple[tuple[str, int, float], ...]:
    """The ``count`` channels the attribute depends on most specifically (the most |toward| per
    unit of ``elsewhere``), each offset by one ``spread`` towards the attribute."""
    specificity = np.abs(toward) / (elsewhere + 1e-6 * elsewhere.max() + 1e-12)
    order = np.argsort(-specificity, kind="stable")[:count]
    return tuple((where[i][0], int(where[i][1]), float(np.sign(toward[i]) * spread[i]))
                 for i in sorted(order, key=lambda i: (where[i][0], where[i][1])))


def style_layers_of(generator: GeneratorBase) -> list[str]:
    """The convolution layers whose styles a style-space direction may offset."""
    sizes = generator.style_sizes()
    return [layer.name for layer in generator.layers if layer.kind == "conv" and layer.name in sizes]


def style_directions(generator: GeneratorBase, classifier: AttributeClassifier, samples: Samples,
                     split: Split, digest: str, counts: Sequence[int] = STYLE_COUNTS) -> list[StyleDirection]:
    layers = style_layers_of(generator)
    if not layers:
        return []
    sizes = generator.style_sizes()
    where = [(name, c) for name in layers for c in range(sizes[name])]
    half = GRADIENT_SAMPLES // 2
    used = np.concatenate([split.positive[:half], split.negative[:half]])
    toward, elsewhere = style_sensitivity(generator, classifier, samples.ws[used], split.attribute,
                                          split.state, layers)
    spread = style_spreads(generator, samples.ws, layers)
    return [StyleDirection(chosen_channels(toward, elsewhere, spread, count, where), split.name,
                           digest, _provenance(
                               "style channels the classifier reads most as the attribute and least "
                               "as any other (mean gradients on the samples), each moved by one "
                               "spread of that style", split, samples, channels=count))
            for count in counts]


# ---- learnt style offsets -----------------------------------------------------------------------

def learnt_offsets(generator: GeneratorBase, classifier: AttributeClassifier, ws: np.ndarray,
                   readings: dict[str, np.ndarray], attribute: str, state: int, layers: Sequence[str],
                   spread: np.ndarray, steps: int = LEARNT_STEPS, seed: int = 0) -> np.ndarray:
    """Per style channel of ``layers`` (concatenated), in units of its ``spread``: the offset that
    makes the classifier read ``attribute`` as ``state`` on the samples ``ws`` (N, num_ws, w_dim)
    while every other attribute's reading stays as ``readings`` (their probabilities before, (N,
    classes) each), with an L1 penalty that leaves most channels near zero."""
    device = generator.w_avg.device
    sizes = [generator.style_sizes()[n] for n in layers]
    scale = torch.from_numpy(spread).float().to(device)
    unit = torch.zeros(len(spread), device=device, requires_grad=True)
    optimiser = torch.optim.Adam([unit], lr=LEARNT_RATE)
    rng = np.random.default_rng(seed)
    classifier.eval()
    for step in range(steps):
        optimiser.param_groups[0]["lr"] = LEARNT_RATE * 0.5 * (1 + np.cos(np.pi * step / steps))
        rows = rng.choice(len(ws), min(LEARNT_BATCH, len(ws)), replace=False)
        with torch.enable_grad():
            parts = torch.split(unit * scale, sizes)
            offsets = {n: part.expand(len(rows), -1) for n, part in zip(layers, parts)}
            image = generator.synthesize(torch.from_numpy(ws[rows]).to(device), style_offsets=offsets,
                                         noise_mode="const").image
            read = {k: F.log_softmax(v, dim=1) for k, v in classifier(image.clamp(-1, 1).cpu()).items()}
            kept = sum(F.kl_div(read[k], torch.from_numpy(readings[k][rows]).float(), reduction="batchmean")
                       for k in read if k != attribute)
            loss = -read[attribute][:, state].mean() + KEEP_WEIGHT * kept + SPARSITY * unit.abs().sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return unit.detach().cpu().numpy()


def largest(learnt: np.ndarray, spread: np.ndarray, count: int, where: Sequence[tuple[str, int]],
            sign: float = 1.0) -> tuple[tuple[str, int, float], ...]:
    """The ``count`` largest learnt offsets as (layer, channel, offset) triples, times ``sign``."""
    order = np.argsort(-np.abs(learnt), kind="stable")[:count]
    return tuple((where[i][0], int(where[i][1]), float(sign * learnt[i] * spread[i]))
                 for i in sorted(order, key=lambda i: (where[i][0], where[i][1])))


def learnt_style_direction(generator: GeneratorBase, classifier: AttributeClassifier, samples: Samples,
                           split: Split, digest: str, trials: "DirectionTrials",
                           counts: Sequence[int] = LEARNT_COUNTS, steps: int = LEARNT_STEPS,
                           report: Callable[[str], None] | None = None) -> StyleDirection:
    """Two-sided: above zero the offsets learnt on the split's negatives (towards the attribute),
    below zero those learnt on its positives (away from it); each side keeps the count of largest
    offsets that clears the aims by the most on ``trials``.  ``report`` hears of each side (minutes
    each on a CPU)."""
    layers = style_layers_of(generator)
    sizes = generator.style_sizes()
    where = [(name, c) for name in layers for c in range(sizes[name])]
    spread = style_spreads(generator, samples.ws, layers)
    sides = {}
    for state, movers, sign in ((1, split.negative, 1.0), (0, split.positive, -1.0)):
        learnt = learnt_offsets(generator, classifier, samples.ws[movers],
                                {k: v[movers] for k, v in samples.probabilities.items()},
                                split.attribute, state, layers, spread, steps)
        options = [largest(learnt, spread, count, where, sign) for count in counts]
        sides[state] = max(options, key=lambda offsets: trials.balanced(
            StyleDirection(offsets), sign, split.attribute, state).margin)
        if report:
            report(f"{split.name}: learnt style offsets {'above' if sign > 0 else 'below'} zero: "
                   f"{len(sides[state])} kept of {len(learnt)}")
    return StyleDirection(sides[1], split.name, digest, _provenance(
        "style offsets learnt on the samples each side must move: the classifier's reading of the "
        "other state raised, every other attribute's reading kept (KL), an L1 penalty; each side "
        "keeps its largest offsets (negative_offsets: below zero)", split, samples,
        channels=len(sides[1]), negative_channels=len(sides[0]), steps=steps), negative_offsets=sides[0])


# ---- choosing ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Scored:
    """A direction at its amounts (one per goal: +amount for the attribute's state, -amount away
    from it), its worst flip rate and preservation over those goals, and how far each goal clears
    both aims (the worse of its two ``margins``)."""

    direction: AnyDirection
    method: str
    amounts: dict[int, float]  # goal state -> signed amount
    flip_rate: float
    preservation: float
    margins: dict[int, float]  # goal state -> margin

    @property
    def margin(self) -> float:
        return min(self.margins.values())

    def rank(self) -> tuple[int, float]:
        """The goals it meets both aims on, then its worst margin: a direction that meets them
        one way beats one that misses them both ways by less."""
        return sum(m >= 0 for m in self.margins.values()), self.margin


class AtAmount(NamedTuple):
    amount: float  # signed
    flip_rate: float
    preservation: float
    margin: float  # the worse of the two ``margins``


def margins(flip: float, kept: float, eligible: int, samples: int) -> tuple[float, float]:
    """How far a flip rate measured on ``eligible`` samples and a preservation measured on
    ``samples`` clear their aims, each in standard errors at its aim: on other seeds a rate varies
    more the fewer samples it was measured on, so a flip read on the third of the seeds not yet in
    the goal state needs more room than a preservation read on all of them."""
    flip_error = np.sqrt(FLIP_AIM * (1 - FLIP_AIM) / max(eligible, 1))
    kept_error = np.sqrt(PRESERVATION_AIM * (1 - PRESERVATION_AIM) / max(samples, 1))
    return (flip - FLIP_AIM) / flip_error, (kept - PRESERVATION_AIM) / kept_error


class DirectionTrials:
    """Directions tried on the tuning samples: flip rate and preservation at the amount that clears
    both aims by the most."""

    def __init__(self, tuner: TuningRenderer, classifier: AttributeClassifier, refinements: int = 3):
        self.tuner, self.classifier, self.refinements = tuner, classifier, refinements
        self.before = {k: v.argmax(axis=1) for k, v in tuner.tuning.probabilities.items()}
        self.seeds = tuner.tuning.seeds
        self._style_trials: dict[tuple, tuple[float, float]] = {}  # a side is tried again when joined

    def at_amounts(self, scored: Scored, attribute: str) -> dict:
        """Flip rate and preservation on these seeds at the amounts ``scored`` was chosen at."""
        measured = {str(state): dict(zip(("flip_rate", "preservation"), (round(v, 4) for v in self.at(
                        scored.direction, amount, attribute, state)))) for state, amount in scored.amounts.items()}
        return {"seeds": [self.seeds[0], self.seeds[-1]],
                "flip_rate": min(m["flip_rate"] for m in measured.values()),
                "preservation": min(m["preservation"] for m in measured.values()), "by_state": measured}

    def at(self, direction: AnyDirection, amount: float, attribute: str, state: int) -> tuple[float, float]:
        """(flip rate into ``state``, preservation) of ``direction`` at ``amount``.  A style-space
        side is rendered once per amount: the learnt sides' counts, then the learnt and the joined
        directions, try the same offsets at the same amounts."""
        edit = direction.to_edit(amount)
        key = ((edit.active_offsets(), amount, attribute, state) if isinstance(edit, StyleChannelEdit)
               else None)
        if key in self._style_trials:
            return self._style_trials[key]
        images = self.tuner.images(Recipe(edits=(edit,)))
        after = {k: v.argmax(axis=1) for k, v in self.classifier.classify(images).items()}
        flip = flip_rate(self.before[attribute], after[attribute], state)
        found = 0.0 if np.isnan(flip) else flip, preservation(self.before, after, attribute)
        if key is not None:
            self._style_trials[key] = found
        return found

    def balanced(self, direction: AnyDirection, sign: float, attribute: str,
                 state: int) -> AtAmount:
        """The trial whose margin is largest: a larger amount flips more and keeps less, so up
        ``AMOUNTS`` until the flip's margin passes the preservation's, then halving the step below
        to where they meet."""
        eligible = int(np.sum(self.before[attribute] != state))
        tried: list[AtAmount] = []

        def trial(amount: float) -> bool:
            """Tries ``amount``; whether the flip's margin has reached the preservation's."""
            flip, kept = self.at(direction, sign * amount, attribute, state)
            of_flip, of_kept = margins(flip, kept, eligible, len(self.seeds))
            tried.append(AtAmount(sign * amount, flip, kept, min(of_flip, of_kept)))
            return of_flip >= of_kept

        below = 0.0
        for amount in AMOUNTS:
            if trial(amount):
                low, high = below, amount
                for _ in range(self.refinements):
                    middle = (low + high) / 2
                    low, high = (low, middle) if trial(middle) else (middle, high)
                break
            if tried[-1].preservation < GIVE_UP_PRESERVATION:  # the portraits are other people already
                break
            below = amount
        return max(tried, key=lambda t: t.margin)

    def score(self, direction: AnyDirection, method: str, attribute: str,
              goals: Sequence[tuple[int, float]]) -> Scored:
        """Balanced for each goal (state, sign of the amount that moves towards it)."""
        found = {state: self.balanced(direction, sign, attribute, state) for state, sign in goals}
        return Scored(direction, method, {state: f.amount for state, f in found.items()},
                      min(f.flip_rate for f in found.values()), min(f.preservation for f in found.values()),
                      {state: f.margin for state, f in found.items()})


def scored_text(scored: Scored) -> str:
    """One line: the method and its setting, the amounts, flip, preservation and margin on the
    tuning seeds."""
    direction = scored.direction
    setting = (f"{len(direction.offsets)} channels" if isinstance(direction, StyleDirection)
               else f"ws {direction.first}-{'end' if direction.last is None else direction.last}")
    if isinstance(direction, StyleDirection) and direction.negative_offsets:
        setting += f" ({len(direction.negative_offsets)} below zero)"
    amounts = " ".join(f"{amount:+g}" for amount in scored.amounts.values())
    margins_text = " ".join(f"{m:+.1f}" for m in scored.margins.values())
    return (f"{scored.method} {setting} at {amounts}  flip {scored.flip_rate:.0%}  "
            f"kept {scored.preservation:.0%}  margins {margins_text}")


def goals_of(split: Split) -> tuple[tuple[int, float], ...]:
    """Where a direction is scored: both ways for a boolean attribute, into its class otherwise."""
    return ((1, 1.0), (0, -1.0)) if split.attribute != "hair_colour" else ((split.state, 1.0),)


def choose_direction(scores: Sequence[Scored]) -> Scored:
    """The direction that meets both aims on the most goals, then clears them by the most at its
    worst goal (``Scored.rank``)."""
    if not scores:
        raise DirectionError("no candidate directions to choose from")
    return max(scores, key=Scored.rank)


JOINED = "joined sides"  # the method of a direction ``joined_sides`` made


def joined_sides(scores: Sequence[Scored]) -> StyleDirection | None:
    """A two-sided style direction from the style-space candidates that clear the aims by the most
    each way: above zero the best at the attribute's state 1, below zero the best at state 0 (its
    negative side, or its one side).  None when one candidate is best both ways."""
    styles = [s for s in scores if isinstance(s.direction, StyleDirection) and set(s.margins) == {0, 1}]
    if not styles:
        return None
    up, down = (max(styles, key=lambda s: s.margins[state]) for state in (1, 0))
    if up is down:
        return None
    above, below = up.direction, down.direction
    return StyleDirection(above.offsets, above.name, above.model_hash, {
        "method": f"above zero {up.method}, below zero {down.method}: the candidates that clear the "
                  "aims by the most each way", "above_zero": above.provenance, "below_zero": below.provenance},
        negative_offsets=below.negative_offsets or below.offsets)


def direction_stem(name: str) -> str:
    return name.replace(" ", "-")


# ---- the shipped directions ---------------------------------------------------------------------

METHOD_FILES = {"mean difference": "mean-difference", "conditional boundary": "conditional-boundary",
                "style channels": "style-channels", "learnt style offsets": "learnt-style-offsets"}


def candidates(generator: GeneratorBase, classifier: AttributeClassifier, samples: Samples,
               split: Split, digest: str, every_method: bool, trials: "DirectionTrials | None" = None,
               report: Callable[[str], None] | None = None) -> list[tuple[str, AnyDirection]]:
    """(method, direction) pairs to try: every method's settings, or mean difference alone; the
    learnt style offsets need ``trials`` to choose each side's count."""
    found: list[tuple[str, AnyDirection]] = [("mean difference", mean_difference_direction(samples, split, digest))]
    if every_method:
        found += [("conditional boundary", d) for d in boundary_directions(samples, split, digest)]
        found += [("style channels", d) for d in style_directions(generator, classifier, samples, split, digest)]
        if trials is not None and split.attribute != "hair_colour":
            found.append(("learnt style offsets", learnt_style_direction(
                generator, classifier, samples, split, digest, trials, report=report)))
    return found


def with_figures(scored: Scored, **figures) -> AnyDirection:
    """The direction with how it was chosen and what it measured in its provenance."""
    direction = scored.direction
    settings = ({"channels": len(direction.offsets)} if isinstance(direction, StyleDirection)
                else {"rows": [direction.first, direction.last]})
    if isinstance(direction, StyleDirection) and direction.negative_offsets:
        settings["negative_channels"] = len(direction.negative_offsets)
    provenance = {**scored.direction.provenance, "chosen_by": scored.method, **settings,
                  "amounts": {str(k): round(v, 3) for k, v in scored.amounts.items()}, **figures}
    return dataclasses.replace(scored.direction, provenance=provenance)


def figures_of(scored: Scored, seeds: Sequence[int]) -> dict:
    return {"seeds": [seeds[0], seeds[-1]], "flip_rate": round(scored.flip_rate, 4),
            "preservation": round(scored.preservation, 4),
            "margins": {str(k): round(v, 2) for k, v in scored.margins.items()}}
