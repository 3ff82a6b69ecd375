"""The kinds of edit, one module each, registered by name; and applying a list of edits.

Each kind's module holds its dataclass, how its fields are read from JSON, how the edit stack shows
it, and what it does to ws or to one layer's features (``base.EditKind``).  The renderer and the
recipe search apply edits through ``edited_ws``, ``layer_hooks`` and ``style_offsets``; the edit stack and scene files
ask ``kind_of(edit)``.  A new kind is a new module here and one entry in ``KINDS`` and ``Edit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import numpy as np

from ganinterface.engine.kinds import (direction, feature, feature_copy, region_resample,
                                       style_channels, style_mix)
from ganinterface.engine.kinds.base import (EditContext, EditKind, KeyedHook, Tensor, compose,
                                            edit_label)
from ganinterface.engine.kinds.direction import DirectionEdit
from ganinterface.engine.kinds.feature import FeatureEdit
from ganinterface.engine.kinds.feature_copy import FeatureCopy
from ganinterface.engine.kinds.region_resample import RegionResample
from ganinterface.engine.kinds.style_channels import StyleChannelEdit
from ganinterface.engine.kinds.style_mix import StyleMix
from ganinterface.engine.scene import Mask

KINDS: dict[str, EditKind] = {kind.name: kind for kind in (
    feature.KIND, feature_copy.KIND, direction.KIND, style_channels.KIND, style_mix.KIND,
    region_resample.KIND)}
Edit = Union[FeatureEdit, FeatureCopy, DirectionEdit, StyleChannelEdit, StyleMix, RegionResample]

__all__ = ["KINDS", "DirectionEdit", "Edit", "EditKind", "FeatureCopy", "FeatureEdit",
           "RegionResample", "StyleChannelEdit", "StyleMix", "edited_ws", "keeps_rest", "kind_of",
           "layer_hooks", "rest_masks", "style_offsets", "without_rest_kept"]


def kind_of(edit: Edit) -> EditKind:
    return KINDS[edit.kind]


def keeps_rest(edit: Edit) -> bool:
    """Whether the edit is on and keeps the picture outside its mask as it was without it."""
    return edit.enabled and kind_of(edit).keeps_rest(edit)


def without_rest_kept(edits: Sequence[Edit]) -> tuple[Edit, ...]:
    """The edits of the render that those keeping the rest are blended into (``keeps_rest``)."""
    return tuple(edit for edit in edits if not keeps_rest(edit))


def rest_masks(edits: Sequence[Edit], ctx: EditContext) -> list[tuple[Mask, ...]]:
    """Each sample's placed masks of the edits that keep the rest (``engine.keep_rest``)."""
    placed = []
    for edit in edits:
        if keeps_rest(edit):
            kind = kind_of(edit)
            layer = ctx.generator.layer_index(kind.layer(edit))
            placed.append(ctx.placement(kind.mask(edit), kind.anchor(edit), layer).masks)
    return list(zip(*placed))


def edited_ws(ws: Tensor, edits: Sequence[Edit], ctx: EditContext) -> Tensor:
    """ws after the edits that change it, in order; (num_ws, w_dim) or (N, num_ws, w_dim)."""
    for index, edit in enumerate(edits):
        if edit.enabled:
            ws = kind_of(edit).edit_ws(edit, ws, ctx, edit_label(index, edit))
    return ws


def layer_hooks(edits: Sequence[Edit], ctx: EditContext) -> dict[int, KeyedHook]:
    """One hook per layer index, composing that layer's edits in order; edits that change nothing
    (amount 0, an empty mask) add none."""
    per_layer: dict[int, list[KeyedHook]] = {}
    for index, edit in enumerate(edits):
        if edit.enabled:
            made = kind_of(edit).layer_hook(edit, ctx, edit_label(index, edit))
            if made is not None:
                per_layer.setdefault(made[0], []).append(made[1])
    return {k: compose(hooks) for k, hooks in per_layer.items()}


def style_offsets(edits: Sequence[Edit], ctx: EditContext) -> dict[str, np.ndarray]:
    """Layer name -> the sum of the edits' offsets to its modulation styles (float32)."""
    summed: dict[str, np.ndarray] = {}
    for index, edit in enumerate(edits):
        if edit.enabled:
            for layer, offset in kind_of(edit).style_offsets(edit, ctx, edit_label(index, edit)).items():
                summed[layer] = summed[layer] + offset if layer in summed else offset
    return summed
