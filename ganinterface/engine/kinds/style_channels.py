"""``style_channels``: offset a few modulation styles (the affine outputs that scale a layer's input
channels) by ``amount * offset``: a style-space direction, often a handful of channels that open a
mouth or add a hair band and leave the rest of the portrait alone."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from ganinterface.engine.kinds.base import EditContext, EditError, EditKind, named
from ganinterface.engine.scene import SceneFormatError, read_int, read_number, read_str

StyleOffset = tuple[str, int, float]  # layer, channel (index into its styles), offset at amount 1


@dataclasses.dataclass(frozen=True)
class StyleChannelEdit:
    """Add ``amount * offset`` to the styles of the listed (layer, channel)s."""

    offsets: tuple[StyleOffset, ...]
    amount: float
    enabled: bool = True
    name: str = ""
    source: str = ""
    kind: ClassVar[str] = "style_channels"

    def layers(self) -> list[str]:
        """The layers it offsets, in the order they are first listed."""
        return list(dict.fromkeys(layer for layer, _, _ in self.offsets))


def read_offsets(value: Any, what: str) -> tuple[StyleOffset, ...]:
    """``[[layer, channel, offset], ...]`` as a scene or recipe file writes it."""
    if not isinstance(value, list) or not value:
        raise SceneFormatError(f"{what} should be a non-empty list of [layer, channel, offset]")
    offsets = []
    for i, item in enumerate(value):
        where = f"{what}[{i}]"
        if not isinstance(item, (list, tuple)) or len(item) != 3:
            raise SceneFormatError(f"{where} should be [layer, channel, offset]")
        channel = read_int(item[1], f"{where} channel")
        if channel < 0:
            raise SceneFormatError(f"{where} has a negative channel index")
        offsets.append((read_str(item[0], f"{where} layer"), channel,
                        read_number(item[2], f"{where} offset")))
    return tuple(offsets)


class StyleChannelKind(EditKind):
    name = "style_channels"
    edit_type = StyleChannelEdit
    readers = {"offsets": read_offsets, "amount": read_number, "source": read_str}
    has_strength = True

    def describe(self, edit: StyleChannelEdit) -> str:
        count = len(edit.offsets)
        return (f"{named(edit)}Style channels {edit.amount:+.2f}  {count} channel"
                f"{'s' * (count != 1)} in {', '.join(edit.layers())}")

    def style_offsets(self, edit: StyleChannelEdit, ctx: EditContext, what: str) -> dict[str, np.ndarray]:
        sizes = ctx.generator.style_sizes()
        if not sizes:
            raise EditError(f"{what}: this model ({ctx.generator.architecture}) has no modulation "
                            "styles to offset")
        offsets: dict[str, np.ndarray] = {}
        for layer, channel, offset in edit.offsets:
            if layer not in sizes:
                raise EditError(f"{what}: layer {layer!r} has no modulation styles; these do: "
                                f"{', '.join(sizes)}")
            if channel >= sizes[layer]:
                raise EditError(f"{what}: style channel {channel} does not exist; {layer} has "
                                f"styles 0..{sizes[layer] - 1}")
            if edit.amount:
                offsets.setdefault(layer, np.zeros(sizes[layer], np.float32))[channel] += edit.amount * offset
        return offsets


KIND = StyleChannelKind()
