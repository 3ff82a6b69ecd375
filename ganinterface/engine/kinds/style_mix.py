"""``style_mix``: take rows of ws from another seed (shape from one portrait, details from another)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from ganinterface.engine.kinds.base import (EditContext, EditKind, Tensor, named, row_range,
                                            some_rows, w_rows_text)
from ganinterface.engine.scene import optional, read_int


@dataclasses.dataclass(frozen=True)
class StyleMix:
    """Take ws rows ``first .. last`` from another seed's latent (details from one, shape from another)."""

    seed: int
    first: int
    last: int | None = None
    enabled: bool = True
    name: str = ""
    kind: ClassVar[str] = "style_mix"


class StyleMixKind(EditKind):
    name = "style_mix"
    edit_type = StyleMix
    readers = {"seed": read_int, "first": read_int, "last": optional(read_int)}

    def describe(self, edit: StyleMix) -> str:
        return f"{named(edit)}Style mix from seed {edit.seed}  {w_rows_text(edit.first, edit.last)}"

    def makes_w_plus(self, edit: StyleMix) -> bool:
        return some_rows(edit.first, edit.last)

    def edit_ws(self, edit: StyleMix, ws: Tensor, ctx: EditContext, what: str) -> Tensor:
        rows = row_range(edit.first, edit.last, ws.shape[-2], what)
        ws = ws.clone()
        ws[..., rows, :] = ctx.other_ws(edit.seed)[rows]
        return ws


KIND = StyleMixKind()
