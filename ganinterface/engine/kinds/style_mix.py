"""``style_mix``: take rows of ws from another latent, a seed's or a file's (shape and identity from
one portrait, colours and details from another)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from ganinterface.engine.kinds.base import (EditContext, EditKind, TakesLatent, Tensor, named,
                                            row_range, some_rows, source_text, source_ws,
                                            w_rows_text)
from ganinterface.engine.scene import decode_array, optional, read_int, read_str


@dataclasses.dataclass(frozen=True, eq=False)
class StyleMix(TakesLatent):
    """Take ws rows ``first .. last`` from another latent: ``w`` (W or W+, e.g. a projected
    picture's; ``source`` names its file) when given, else ``seed``'s."""

    seed: int
    first: int
    last: int | None = None
    enabled: bool = True
    name: str = ""
    w: np.ndarray | None = None
    source: str = ""
    kind: ClassVar[str] = "style_mix"


class StyleMixKind(EditKind):
    name = "style_mix"
    edit_type = StyleMix
    readers = {"seed": read_int, "first": read_int, "last": optional(read_int),
               "w": optional(decode_array), "source": read_str}

    def describe(self, edit: StyleMix) -> str:
        return f"{named(edit)}Style mix from {source_text(edit)}  {w_rows_text(edit.first, edit.last)}"

    def makes_w_plus(self, edit: StyleMix) -> bool:
        return some_rows(edit.first, edit.last) or (edit.w is not None and edit.w.ndim == 2)

    def edit_ws(self, edit: StyleMix, ws: Tensor, ctx: EditContext, what: str) -> Tensor:
        rows = row_range(edit.first, edit.last, ws.shape[-2], what)
        ws = ws.clone()
        ws[..., rows, :] = source_ws(edit, ctx, what)[rows]
        return ws


KIND = StyleMixKind()
