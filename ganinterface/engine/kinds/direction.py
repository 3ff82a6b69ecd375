"""``direction``: move rows of ws along a direction in W (a smile, an age, a hair colour)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import torch

from ganinterface.engine.kinds.base import (EditContext, EditError, EditKind, Tensor, named,
                                            row_range, some_rows, w_rows_text)
from ganinterface.engine.scene import (decode_array, frozen_array, optional, read_int,
                                       read_number, read_str)


@dataclasses.dataclass(frozen=True, eq=False)
class DirectionEdit:
    """Move ws rows ``first .. last`` (inclusive w indices) by ``amount * direction``.

    ``direction`` is (w_dim,) or (num_ws, w_dim).  ``source`` names the file it came from, if any.
    """

    direction: np.ndarray
    amount: float
    first: int = 0
    last: int | None = None  # None: to the last w
    enabled: bool = True
    name: str = ""
    source: str = ""
    kind: ClassVar[str] = "direction"

    def __post_init__(self) -> None:
        object.__setattr__(self, "direction", frozen_array(self.direction))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, DirectionEdit)
                and np.array_equal(self.direction, other.direction)
                and (self.amount, self.first, self.last, self.enabled, self.name, self.source)
                == (other.amount, other.first, other.last, other.enabled, other.name, other.source))

    def __hash__(self) -> int:
        return hash((self.direction.tobytes(), self.amount, self.first, self.last, self.enabled))


class DirectionKind(EditKind):
    name = "direction"
    edit_type = DirectionEdit
    readers = {"direction": decode_array, "amount": read_number, "first": read_int,
               "last": optional(read_int), "source": read_str}
    has_strength = True

    def describe(self, edit: DirectionEdit) -> str:
        return f"{named(edit)}Direction {edit.amount:+.2f}  {w_rows_text(edit.first, edit.last)}"

    def makes_w_plus(self, edit: DirectionEdit) -> bool:
        return some_rows(edit.first, edit.last)

    def edit_ws(self, edit: DirectionEdit, ws: Tensor, ctx: EditContext, what: str) -> Tensor:
        """ws with rows first..last moved by amount * direction."""
        num_ws, w_dim = ws.shape[-2:]
        rows = row_range(edit.first, edit.last, num_ws, what)
        direction = edit.direction
        if direction.shape == (w_dim,):
            step = torch.from_numpy(np.array(direction)).to(ws.device)[None, :]
        elif direction.shape == (num_ws, w_dim):
            step = torch.from_numpy(np.array(direction[rows])).to(ws.device)
        else:
            raise EditError(f"{what}: direction has shape {direction.shape}, this model needs "
                            f"({w_dim},) or ({num_ws}, {w_dim})")
        ws = ws.clone()
        ws[..., rows, :] += float(edit.amount) * step
        return ws


KIND = DirectionKind()
