"""What an edit kind is, what it may ask of whoever applies it, and the pieces its hooks share.

A kind changes ws (``edit_ws``: rows of the latent), or the output activation of one layer
(``layer_hook``), or the modulation styles of some layers (``style_offsets``), or several.  Both work on a batch: ws is (num_ws, w_dim) or (N, num_ws, w_dim), an
activation (N, C, h, w).  The renderer applies a scene's edits to one sample (N = 1); the recipe
search applies a recipe to N samples at once; the same kind code serves both, through an
``EditContext`` that answers what depends on the samples (another seed's latent, where a mask lands).

A hook comes with a key: a digest of exactly what it does (channels, amount, the rasterised masks,
the other latent's activation), so the renderer's layer cache can tell when a hook has really
changed, and can keep using an earlier hook of the same key.  Hooks touch only what they change (the
chosen channels inside the mask's bounding box, ``Region``), in the activation's own dtype, device
and memory format; what they add is built once per dtype and device (``built_for``), not per call.
Problems with an edit raise ``EditError`` with a message naming the edit.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
import torch

from ganinterface.engine.scene import Anchor, Mask, Reader, frozen_array, read_bool
from ganinterface.models.base import GeneratorBase, LayerInfo

Tensor = torch.Tensor


class EditError(ValueError):
    """An edit cannot be applied to this model; the message names the edit and the problem."""


def edit_label(index: int, edit: Any) -> str:
    """How messages name an edit: "edit 3 (feature 'open mouth')"."""
    name = f" {edit.name!r}" if edit.name else ""
    return f"edit {index + 1} ({edit.kind}{name})"


def digest(*parts: object) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.tobytes() if isinstance(part, np.ndarray) else repr(part).encode())
        h.update(b"\x00")
    return h.hexdigest()


class KeyedHook:
    """A change to a layer's output activation and a digest of everything it does (equal keys:
    identical effect).  ``change`` and ``apply`` work in place (generators hand a hook the layer's
    own fresh output); ``apply`` returns it.  The key is computed when first asked (the renderer
    asks, the recipe search never does)."""

    def __init__(self, change: Callable[[Tensor], None], key: Callable[[], str]):
        self.change = change
        self._key = key

    @functools.cached_property
    def key(self) -> str:
        return self._key()

    def apply(self, x: Tensor) -> Tensor:
        self.change(x)
        return x


def compose(hooks: Sequence[KeyedHook]) -> KeyedHook:
    """Several edits on one layer, applied in the scene's order."""
    if len(hooks) == 1:
        return hooks[0]

    def change(x: Tensor) -> None:
        for hook in hooks:
            hook.change(x)

    return KeyedHook(change, lambda: digest(*(h.key for h in hooks)))


Parts = TypeVar("Parts")


def built_for(build: Callable[[torch.dtype, torch.device], Parts]) -> Callable[[Tensor], Parts]:
    """``parts(x)``: ``build(x.dtype, x.device)``, made on the first call for that dtype and device
    and kept (with the hook that holds it: the renderer reuses a hook while its key is unchanged)."""
    made: dict[tuple[torch.dtype, torch.device], Parts] = {}

    def parts(x: Tensor) -> Parts:
        key = (x.dtype, x.device)
        if key not in made:
            made[key] = build(*key)
        return made[key]

    return parts


@dataclasses.dataclass(frozen=True)
class Region:
    """The rows and columns of a layer's map where some sample's mask is not 0: its bounding box."""

    rows: slice
    cols: slice

    @classmethod
    def of(cls, rasters: np.ndarray) -> Region:
        """The box around the non-zero pixels of (N, h, w) ``rasters`` (which has some)."""
        covered = rasters.any(axis=0)
        rows, cols = np.flatnonzero(covered.any(axis=1)), np.flatnonzero(covered.any(axis=0))
        return cls(slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))

    def crop(self, x: Any) -> Any:
        """The box of (..., h, w) ``x``: a view of a tensor, so changing it changes ``x``."""
        return x[..., self.rows, self.cols]


def channel_runs(channels: Sequence[int]) -> list[slice]:
    """Sorted, unique channels as runs of consecutive ones: (1, 2, 3, 7) -> [1:4, 7:8]."""
    runs: list[slice] = []
    for channel in channels:
        if runs and runs[-1].stop == channel:
            runs[-1] = slice(runs[-1].start, channel + 1)
        else:
            runs.append(slice(channel, channel + 1))
    return runs


@dataclasses.dataclass(frozen=True, eq=False)
class Placement:
    """Where a mask lands at one layer on each of N samples."""

    masks: Sequence[Mask]  # the mask as placed on each sample (an anchored mask follows its feature)
    rasters: np.ndarray  # (N, h, w) float32: the placed masks at the layer, its margin kept clear


class EditContext(Protocol):
    """What a kind may ask of whoever applies it: the renderer (one scene) or the recipe search
    (a batch of samples)."""

    generator: GeneratorBase
    device: torch.device

    def other_ws(self, seed: int) -> Tensor:
        """(num_ws, w_dim): another seed's latent, mapped as the samples' own were."""

    def placement(self, mask: Mask, anchor: Anchor | None, layer: int) -> Placement:
        """``mask`` at ``layer`` on each sample; with an anchor, moved to where the anchor's channels
        peak on the sample's unedited features."""

    def features_of(self, ws: Tensor, layer: int) -> tuple[Tensor, str]:
        """(1, C, h, w): ``layer``'s unedited activation for another latent ws (num_ws, w_dim), and
        a digest of everything it depends on."""


def source_ws(edit: Any, ctx: EditContext, what: str) -> Tensor:
    """(num_ws, w_dim): the latent an edit takes from: its ``w`` (W or W+, e.g. a projected
    picture's) when it has one, else its ``seed`` mapped as the samples' own were."""
    if edit.w is None:
        return ctx.other_ws(edit.seed)
    g = ctx.generator
    if edit.w.shape == (g.w_dim,):
        rows = np.broadcast_to(edit.w, (g.num_ws, g.w_dim))
    elif edit.w.shape == (g.num_ws, g.w_dim):
        rows = edit.w
    else:
        raise EditError(f"{what}: its latent has shape {edit.w.shape}, this model needs "
                        f"({g.w_dim},) or ({g.num_ws}, {g.w_dim})")
    return torch.from_numpy(np.array(rows, dtype=np.float32)).to(ctx.device)


def source_text(edit: Any) -> str:
    """How an edit's stack line names where it takes from."""
    if edit.w is None:
        return f"seed {edit.seed}"
    return edit.source or "a latent"


class TakesLatent:
    """For the dataclass (frozen, ``eq=False``) of an edit that takes from another latent: its
    ``w`` (an array, or None for ``seed``'s latent) is frozen, and compared and hashed by value."""

    w: np.ndarray | None

    def __post_init__(self) -> None:
        if self.w is not None:
            object.__setattr__(self, "w", frozen_array(self.w))

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and all(
            _same(getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self))

    def __hash__(self) -> int:
        return hash(tuple(value.tobytes() if isinstance(value, np.ndarray) else value
                          for value in (getattr(self, f.name) for f in dataclasses.fields(self))))


def _same(x: Any, y: Any) -> bool:
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and np.array_equal(x, y)
    return x == y


def row_range(first: int, last: int | None, num_ws: int, what: str) -> slice:
    """ws rows ``first .. last`` (inclusive; None = to the end) as a slice, checked against num_ws."""
    last = num_ws - 1 if last is None else last
    if not 0 <= first <= last < num_ws:
        raise EditError(f"{what}: w rows {first}..{last} are outside this model's 0..{num_ws - 1}")
    return slice(first, last + 1)


def check_layer(generator: GeneratorBase, layer: str, what: str) -> tuple[int, LayerInfo]:
    """The index and description of ``layer``; EditError if the model has no such layer."""
    try:
        k = generator.layer_index(layer)
    except KeyError as error:
        raise EditError(f"{what}: {error.args[0]}") from None
    return k, generator.layers[k]


def check_channels(channels: Sequence[int], count: int, layer: str, what: str) -> tuple[int, ...]:
    unique = tuple(sorted(set(int(c) for c in channels)))
    if not unique:
        raise EditError(f"{what}: no channels chosen")
    if unique[0] < 0 or unique[-1] >= count:
        raise EditError(f"{what}: channel {unique[-1] if unique[-1] >= count else unique[0]} does not "
                        f"exist; {layer} has channels 0..{count - 1}")
    return unique


def landing(ctx: EditContext, layer: int, mask: Mask, anchor: Anchor | None, what: str,
            amount: float = 1.0) -> Placement | None:
    """Where an edit's mask lands at ``layer`` on each sample; None when the edit changes nothing
    there (amount 0, an empty mask, or a mask off the map on every sample).  A bad anchor is an
    error even then."""
    if anchor is not None:
        _, info = check_layer(ctx.generator, anchor.layer, f"{what} anchor")
        check_channels(anchor.channels, info.channels, info.name, f"{what} anchor")
    if amount == 0 or mask.is_empty():
        return None
    placement = ctx.placement(mask, anchor, layer)
    return placement if placement.rasters.any() else None


KEEP_REST = {"keep_rest": read_bool}  # the reader of a layer kind's ``keep_rest`` field


def keep_rest_field() -> Any:
    """A layer kind's ``keep_rest`` field: False by default, and then left out of files."""
    return dataclasses.field(default=False, metadata={"omit_when_default": True})


def named(edit: Any) -> str:
    """The start of an edit's one-line description: its name, quoted, if it has one."""
    return f"“{edit.name}” " if edit.name else ""


def anchored(anchor: Anchor | None) -> str:
    """The end of an anchored edit's one-line description."""
    return "  ⚓" if anchor is not None else ""


def rest_kept(edit: Any) -> str:
    """The end of the one-line description of an edit that keeps the picture outside its mask."""
    return "  ▣" if edit.keep_rest else ""


def some_rows(first: int, last: int | None) -> bool:
    """Whether rows ``first .. last`` leave some of ws out (an edit of them makes a W latent W+)."""
    return first != 0 or last is not None


def w_rows_text(first: int, last: int | None) -> str:
    return f"ws {first}–{'end' if last is None else last}"


class EditKind(abc.ABC):
    """One kind of edit: its dataclass, how its fields are read from JSON, how the edit stack shows
    it and what it lets the user change there, and what it does to ws or a layer's features."""

    name: ClassVar[str]  # the "kind" field of scene and recipe files
    edit_type: ClassVar[type]  # its dataclass
    readers: ClassVar[Mapping[str, Reader]]  # its own fields' readers ("enabled", "name": all kinds')
    # What the edit stack lets the user change, besides the name and whether it is shown:
    has_strength: ClassVar[bool] = False  # `amount`: the Strength box; a recipe's strength scales it
    strength_tip: ClassVar[str] = "Strength of the selected edit (negative subtracts)"
    has_channels: ClassVar[bool] = False  # `channels`: re-targeted by typing a channel list
    has_fill_scale: ClassVar[bool] = False  # `scale`: where a fill copies from ("Fill from")
    redraws_seed: ClassVar[bool] = False  # `seed`: "New fill" draws it from another random seed
    # `keep_rest`: the picture outside the edit's mask stays as it was without it (the renderer
    # blends the render without such edits back in outside their masks, ``engine.keep_rest``)
    can_keep_rest: ClassVar[bool] = False

    @abc.abstractmethod
    def describe(self, edit: Any) -> str:
        """One line for the edit stack, e.g. "“smile” Direction +1.50  ws 0–end"."""

    def layer(self, edit: Any) -> str | None:
        """The layer whose features the edit changes; None for an edit of ws."""
        return None

    def mask(self, edit: Any) -> Mask | None:
        return None

    def anchor(self, edit: Any) -> Anchor | None:
        return None

    def keeps_rest(self, edit: Any) -> bool:
        return self.can_keep_rest and edit.keep_rest

    def makes_w_plus(self, edit: Any) -> bool:
        """Whether it moves some rows of ws and not others, so a W latent becomes W+."""
        return False

    def scaled(self, edit: Any, factor: float) -> Any:
        """The edit at ``factor`` times its strength (unchanged if it has none)."""
        if not self.has_strength:
            return edit
        return dataclasses.replace(edit, amount=edit.amount * factor)

    def edit_ws(self, edit: Any, ws: Tensor, ctx: EditContext, what: str) -> Tensor:
        """ws after the edit: (num_ws, w_dim) or (N, num_ws, w_dim); a new tensor if changed."""
        return ws

    def layer_hook(self, edit: Any, ctx: EditContext, what: str) -> tuple[int, KeyedHook] | None:
        """The layer index and hook that make the edit; None if it changes no layer's output."""
        return None

    def style_offsets(self, edit: Any, ctx: EditContext, what: str) -> dict[str, np.ndarray]:
        """Layer name -> (styles,) float32 added to that layer's modulation styles; {} if none."""
        return {}


class LayerKind(EditKind):
    """A kind whose edits change ``layer``'s features inside ``mask``, and may keep the picture
    outside it (``keep_rest``)."""

    can_keep_rest = True

    def layer(self, edit: Any) -> str:
        return edit.layer

    def mask(self, edit: Any) -> Mask:
        return edit.mask


class AnchoredKind(LayerKind):
    """A layer kind whose mask may follow a feature (``anchor``) onto each portrait."""

    def anchor(self, edit: Any) -> Anchor | None:
        return edit.anchor
