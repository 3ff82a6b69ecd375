"""Gestures on the image become edits: what a brush stroke, a rectangle or a marked box adds.

The canvas reports shapes in normalised image coordinates; the window reads the toolbar and the
feature panel into a ``PaintSettings``; a ``Painter`` turns both into commands on the document's
``CommandStack``.  A drag sends many events: its first adds one ``FeatureEdit``, the others replace
it under one merge key, so the whole drag is one undo step.  No Qt here: tests drive it with plain
values.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

import numpy as np

from ganinterface.engine import commands as cmd
from ganinterface.engine.analysis import AnalysisError, anchor_from
from ganinterface.engine.fill import FillError, find_fill_source
from ganinterface.engine.kinds import FeatureCopy, FeatureEdit, RegionResample, StyleMix
from ganinterface.engine.scene import Anchor, Mask, Recipe, Rect, Shape, Stroke

RESAMPLE_SEEDS = 100_000  # a resampled region takes its features from a seed below this


@dataclasses.dataclass(frozen=True)
class PaintSettings:
    """The toolbar and the feature panel as a gesture sees them."""

    layer: str  # "" (no layer chosen): gestures add nothing
    channels: tuple[int, ...]  # the selected channels; none selected: all ``channel_count``
    channel_count: int
    strength: float = 1.0
    softness: float = 0.5
    subtract: bool = False  # the left button subtracts (and the right one adds)
    anchored: bool = False  # anchor new edits where their channels peak in ``features``
    features: np.ndarray | None = None  # (C, h, w) of ``layer`` as shown: where anchors are measured
    layers: tuple[str, ...] = ()  # every synthesis layer of the model, in order
    image: np.ndarray | None = None  # (H, W, 3) the picture shown: where Fill looks for a source


def brush_radius(diameter_pixels: float, image_height: int) -> float:
    """A brush of ``diameter_pixels`` image pixels as a radius in image heights, as masks store it."""
    return diameter_pixels / 2 / max(image_height, 1)


def layers_from(layer: str, layers: tuple[str, ...]) -> tuple[str, ...]:
    """``layer`` and every layer after it (just ``layer`` when the list does not hold it)."""
    return layers[layers.index(layer):] if layer in layers else (layer,)


def is_flat(box: tuple[float, float, float, float]) -> bool:
    """A box with no width or no height: a click, or a drag back to a line."""
    return box[2] <= box[0] or box[3] <= box[1]


class Painter:
    """The painting state of one document: the drag in progress and the names already given.

    ``notify(text)`` tells the user something worth knowing about an edit (e.g. that no channel was
    selected); ``rng`` picks the seeds of resampled regions.
    """

    def __init__(self, stack: cmd.CommandStack, notify: Callable[[str], None] = lambda _text: None,
                 rng: random.Random | None = None) -> None:
        self.stack = stack
        self.notify = notify
        self.rng = rng if rng is not None else random.Random()
        self._index: int | None = None  # the edit the drag in progress replaces; None between drags
        self._name = ""
        self._anchor: Anchor | None = None
        self._serial = 0  # one merge key per drag, so two drags never merge into one undo step
        # the last Fill: its name, the box it filled and the box it copied from (for outlines)
        self.last_fill: tuple[str, tuple[float, ...], tuple[float, ...]] | None = None

    # ---- drags: one undo step each -------------------------------------------------------------
    def stroke(self, points: list[tuple[float, float]], radius: float, sign: int, finished: bool,
               settings: PaintSettings) -> None:
        """A brush drag so far: ``radius`` in image heights, ``sign`` +1 left button, -1 right."""
        shape = Stroke(tuple(points), radius=round(radius, 5), softness=settings.softness)
        self._paint(shape, sign, finished, "Brush stroke", settings)

    def rectangle(self, box: tuple[float, float, float, float], sign: int, finished: bool,
                  settings: PaintSettings) -> None:
        """A rectangle drag so far; while it is flat nothing changes (a click adds nothing)."""
        if is_flat(box):
            if finished:
                self.end_drag()
            return
        self._paint(Rect(*box, softness=settings.softness), sign, finished, "Rectangle", settings)

    def end_drag(self) -> None:
        """Finish the drag in progress: its edit (if any) stays as one history entry."""
        self.stack.close_merge()
        self._index = None
        self._serial += 1

    def _paint(self, shape: Shape, sign: int, finished: bool, label: str,
               settings: PaintSettings) -> None:
        if settings.layer:
            self._push(self._feature_edit(shape, sign, label, settings), label)
        if finished:
            self.end_drag()

    def _feature_edit(self, shape: Shape, sign: int, label: str,
                      settings: PaintSettings) -> FeatureEdit:
        channels = settings.channels
        if self._index is None:  # a new edit: named once, anchored on the features not yet edited
            self._name = self._unused_name(label.lower())
            self._anchor = anchor_at_peak(settings) if settings.anchored else None
        if not channels:
            channels = tuple(range(settings.channel_count))
            self.notify(f"No channels selected: the edit changes all {len(channels)} channels of "
                        f"{settings.layer}")
        amount = (-sign if settings.subtract else sign) * settings.strength
        return FeatureEdit(settings.layer, channels, Mask((shape,)), amount, anchor=self._anchor,
                           name=self._name)

    def _push(self, edit: FeatureEdit, label: str) -> None:
        key = ("paint", self._serial)
        if self._index is None:
            self.stack.push(cmd.add_edit(edit, label, merge_key=key))
            self._index = len(self.stack.scene.edits) - 1
        else:
            self.stack.push(cmd.replace_edit(self._index, edit, label, merge_key=key))

    # ---- boxes: one edit when the drag ends ----------------------------------------------------
    def resample(self, box: tuple[float, float, float, float], settings: PaintSettings) -> None:
        """Regenerate ``box`` at the layer from a random seed (a new fill each time)."""
        if settings.layer and not is_flat(box):
            edit = RegionResample(settings.layer, Mask((Rect(*box, softness=settings.softness),)),
                                  seed=self.rng.randrange(RESAMPLE_SEEDS),
                                  name=self._unused_name("resample"))
            self.stack.push(cmd.add_edit(edit, "Resample region"))

    def fill(self, box: tuple[float, float, float, float], settings: PaintSettings) -> None:
        """Remove what ``box`` covers: from the layer on, every layer copies its features from the
        side of the box whose surroundings match the box's own (``engine.fill``); one undo step,
        one row of the edit stack."""
        if not settings.layer or is_flat(box) or settings.image is None:
            return
        try:
            source = find_fill_source(settings.image, box)
        except FillError as error:
            self.notify(f"Fill: {error}")
            return
        layers = layers_from(settings.layer, settings.layers)
        name = self._unused_name("fill")
        mask = Mask((Rect(*box, softness=settings.softness),))
        edits = tuple(FeatureCopy(layer, mask, offset=source.offset, name=name) for layer in layers)
        self.stack.push(cmd.apply_recipe(Recipe(edits=edits, name=name), "Fill region"))
        dx, dy = source.offset
        self.last_fill = (name, box, (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy))
        self.notify(f"Filled with what lies {source.side}, at {settings.layer} and the "
                    f"{len(layers) - 1} layers after it (Ctrl+Z undoes it)")

    def style_mix(self, seed: int, first: int) -> None:
        """Take the styles from ws row ``first`` on from ``seed``."""
        self.stack.push(cmd.add_edit(StyleMix(seed=seed, first=first, name=f"style of {seed}"),
                                     f"Style mix from seed {seed}"))

    def _unused_name(self, stem: str) -> str:
        """"brush 3": numbered so that two edits never share a name (the edit stack shows
        consecutive edits with one name, a recipe's, as one row)."""
        taken = {edit.name for edit in self.stack.scene.edits}
        number = 1
        while f"{stem} {number}" in taken:
            number += 1
        return f"{stem} {number}"


def anchor_at_peak(settings: PaintSettings) -> Anchor | None:
    """Where the selected channels peak in the features shown (none without a selection)."""
    if not settings.channels or settings.features is None:
        return None
    try:
        return anchor_from(settings.features, settings.channels, settings.layer)
    except AnalysisError:  # e.g. a selection beyond this layer's channels
        return None
