"""The contract every generator in ganinterface fulfils, whatever checkpoint it came from.

A generator is split, like NVlabs' networks, into a mapping network (z, c -> ws) and a synthesis
network that runs as an ordered list of *layers*.  Running synthesis layer by layer is what makes
feature-map viewing and incremental re-rendering cheap:

* ``layers`` lists every layer in execution order (``LayerInfo``).  Layer ``k`` reads the w vectors
  ``layers[k].w_indices`` and nothing else from ``ws``.
* ``synthesize(ws, start=k, state=s)`` resumes at layer ``k`` from the state that a previous run
  recorded *before* layer ``k`` (``SynthesisOutput.states[k]``), and gives exactly the image of a
  full forward pass.
* ``hooks`` maps a layer name to a function applied to that layer's output activation before anything
  downstream (or a tap) sees it.  The activation is the layer's own fresh output, held by nothing
  else, so a hook may change it in place (and return it).  The engine turns edits (FeatureEdit, RegionResample, ...) into hooks;
  models know nothing about edits.  Every layer but a ToRGB (kind "torgb") and the last hands its
  hooked output on as the next state's ``"x"``, and nothing else there depends on the hook: so the
  renderer applies a changed hook to that layer's cached output instead of running it again.
* ``taps`` names layers whose (post-hook) output activations are returned, shape (N, C, H, W).
* ``style_offsets`` maps a layer name to a (C,) or (N, C) tensor added to that layer's modulation
  styles (its affine outputs) before they modulate the convolution; ``style_sizes`` says which
  layers have styles and how many (none for StyleGAN v1, whose AdaIN styles are not modulations).
* ``compute_dtype`` (the fast mode): a generator listing ``torch.bfloat16`` or ``torch.float16`` in
  ``fast_dtypes`` can run its synthesis convolutions in it; what decides the picture's accuracy
  (mapping, demodulation, the image sum, noise) stays float32, and the image is float32.
* Batches: in inference on the CPU a sample of a batch is the bytes of its render alone.  A matrix product of N
  rows and a convolution of N samples sum in another order than one's (below some size torch even
  takes another convolution kernel for one sample), so what a batch would change (styles,
  modulated or plain convolutions) runs one sample at a time there (``per_sample``, ``runs_on``)
  and the rest (noise, activations, filters, the image sum) for the whole batch.  On a GPU a batch
  runs its kernels once, faster; its images may differ from single renders by rounding.

Every model module implements ``GeneratorBase``; ``ganinterface.models.load_generator`` returns one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping
from typing import Any

import torch
from torch import nn

Tensor = torch.Tensor
LayerState = dict[str, Tensor]
LayerHook = Callable[[Tensor], Tensor]
NOISE_MODES = ("const", "random", "none")


def runs_on(x: Tensor) -> int:
    """In how many runs a batch ``x`` computes what depends on the batch size: one per sample in
    inference on the CPU (see *Batches* above), one elsewhere and under autograd (training)."""
    return x.shape[0] if x.device.type == "cpu" and not torch.is_grad_enabled() else 1


def per_sample(compute: Callable[[slice], Tensor], runs: int) -> Tensor:
    """``compute`` of the whole batch (``runs`` 1) or of each sample's slice alone, concatenated
    (``runs`` the batch size)."""
    if runs == 1:
        return compute(slice(None))
    return torch.cat([compute(slice(i, i + 1)) for i in range(runs)])


def with_offset(styles: Tensor, offset: Tensor | None) -> Tensor:
    """A layer's modulation styles (N, C) moved by ``synthesize``'s style offset for it, if any."""
    return styles if offset is None else styles + offset.to(styles.dtype)


def with_detail(hooks: Mapping[str, LayerHook], detail: Mapping[str, Tensor]) -> dict[str, LayerHook]:
    """``hooks`` with each layer of ``detail`` (name -> (C, h, w) or (1, C, h, w)) adding its map to
    the layer's output first, in the output's dtype and memory layout, into a copy (under autograd
    the output may be saved for backward); the layer's own hook, if any, then changes the sum."""
    combined = dict(hooks)
    for name, value in detail.items():
        combined[name] = _adding(value if value.ndim == 4 else value[None], hooks.get(name))
    return combined


def _adding(value: Tensor, hook: LayerHook | None) -> LayerHook:
    def apply(x: Tensor) -> Tensor:
        added = x.clone()
        added += value.to(x.dtype)
        return added if hook is None else hook(added)
    return apply


def size_text(width: int, height: int) -> str:
    """An image's or a feature map's size as every message writes it: width first, as image tools
    do ("64 × 128 px" is a portrait twice as high as wide)."""
    return f"{width} × {height} px"


@dataclasses.dataclass(frozen=True)
class LayerInfo:
    """One synthesis layer as the user sees it in the feature-map browser."""

    name: str  # e.g. "b64.conv1", "b64.torgb", "L3_52_512"
    channels: int  # channels of the layer's output activation
    height: int  # output activation height
    width: int  # output activation width
    w_indices: tuple[int, ...]  # which rows of ws (N, num_ws, w_dim) this layer reads
    kind: str = "conv"  # "conv", "torgb", "input", ... (display only)
    # Activation pixels outside the image on each side (StyleGAN3 computes a border around the
    # image; fractional for some resolutions).  The image occupies [margin, size - margin).
    margin: float = 0.0


@dataclasses.dataclass
class SynthesisOutput:
    image: Tensor  # (N, img_channels, H, W), float32, unclamped, nominal range [-1, 1]
    taps: dict[str, Tensor]  # layer name -> (N, C, h, w) post-hook activation
    states: dict[int, LayerState]  # k -> state before layer k (only those asked for)


class GeneratorBase(nn.Module):
    """Common interface; subclasses set the attributes below in ``__init__``."""

    z_dim: int
    c_dim: int
    w_dim: int
    num_ws: int
    img_channels: int
    img_height: int
    img_width: int
    layers: list[LayerInfo]
    architecture: str  # e.g. "stylegan2", "stylegan3-t", "stylegan3-r"
    fast_dtypes: tuple[torch.dtype, ...] = ()  # reduced precisions synthesize computes in

    # ---- mapping -------------------------------------------------------------------------------
    def mapping(
        self,
        z: Tensor,
        c: Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> Tensor:
        """(N, z_dim), (N, c_dim) -> ws (N, num_ws, w_dim), truncated towards w_avg."""
        raise NotImplementedError

    @property
    def w_avg(self) -> Tensor:
        """(w_dim,) tracked mean of w, the centre of truncation."""
        raise NotImplementedError

    # ---- synthesis -----------------------------------------------------------------------------
    def synthesize(
        self,
        ws: Tensor,
        *,
        start: int = 0,
        state: LayerState | None = None,
        stop: int | None = None,
        taps: Collection[str] = (),
        hooks: Mapping[str, LayerHook] | None = None,
        keep_states: Collection[int] = (),
        noise_mode: str = "const",
        noise_seed: int = 0,
        noise_maps: Mapping[str, Tensor] | None = None,
        compute_dtype: torch.dtype = torch.float32,
        style_offsets: Mapping[str, Tensor] | None = None,
    ) -> SynthesisOutput:
        """Run layers ``start .. stop-1`` (default: to the end and produce the image).

        ``state`` must be given when ``start > 0``.  ``keep_states`` names layer indices whose input
        state is recorded in the output (index ``len(layers)`` means the state after the last layer).
        ``noise_mode``: "const" (the stored per-layer noise), "random" (drawn from ``noise_seed``,
        so reproducible), or "none".  ``noise_maps`` (layer name -> (h, w) map, with "const") replaces
        the stored noise of those layers, e.g. the maps a projection optimised; layers without noise
        inputs ignore it.  When ``stop`` is before the end, ``image`` is empty.
        ``compute_dtype``: float32, or one of ``fast_dtypes``; a state recorded in another type goes
        on in ``compute_dtype`` from the next convolution (a draft can go on from an exact render's
        state).  ``style_offsets``: see the module's description.
        """
        raise NotImplementedError

    def style_sizes(self) -> dict[str, int]:
        """Layer name -> how many modulation styles it has, for every layer that has them."""
        return {}

    # ---- conveniences shared by all generators ------------------------------------------------
    def layer_index(self, name: str) -> int:
        for k, layer in enumerate(self.layers):
            if layer.name == name:
                return k
        known = ", ".join(layer.name for layer in self.layers)
        raise KeyError(f"no layer named {name!r}; layers are: {known}")

    def stored_noise(self) -> dict[str, Tensor]:
        """Layer name -> the (h, w) noise map that mode "const" adds, for every layer with a noise
        input (none by default)."""
        return {}

    def noise_shapes(self) -> dict[str, tuple[int, ...]]:
        """Layer name -> (h, w) of every noise input: what a latent file's noise maps must fit."""
        return {name: tuple(noise.shape) for name, noise in self.stored_noise().items()}

    def _check_noise_maps(self, noise_maps: Mapping[str, Tensor]) -> None:
        """``synthesize``'s ``noise_maps`` name layers with noise inputs and fit their maps."""
        if not noise_maps:
            return
        stored = self.stored_noise()
        for name, noise in noise_maps.items():
            if name not in stored:
                raise ValueError(f"layer {name!r} has no noise input; these do: {', '.join(stored)}")
            if noise.shape != stored[name].shape:
                raise ValueError(f"noise map for {name} has shape {tuple(noise.shape)}, the layer "
                                 f"needs {tuple(stored[name].shape)}")

    def _check_style_offsets(self, style_offsets: Mapping[str, Tensor], batch: int) -> None:
        """``synthesize``'s ``style_offsets`` name layers with styles and fit them."""
        if not style_offsets:
            return
        sizes = self.style_sizes()
        for name, offset in style_offsets.items():
            if name not in sizes:
                having = ", ".join(sizes) or "none (this architecture has no modulation styles)"
                raise ValueError(f"layer {name!r} has no modulation styles; these do: {having}")
            if offset.shape not in ((sizes[name],), (batch, sizes[name])):
                raise ValueError(f"style offsets for {name} have shape {tuple(offset.shape)}, the "
                                 f"layer needs ({sizes[name]},) or ({batch}, {sizes[name]})")

    def first_layer_reading(self, w_index: int) -> int:
        """Index of the first layer that reads ``ws[:, w_index]`` (len(layers) if none does)."""
        for k, layer in enumerate(self.layers):
            if w_index in layer.w_indices:
                return k
        return len(self.layers)

    def _check_synthesis_args(self, ws: Tensor, start: int, state: LayerState | None, stop: int,
                              noise_mode: str, layer_names: Collection[str],
                              compute_dtype: torch.dtype = torch.float32) -> None:
        """ValueError for a bad ``synthesize`` argument; KeyError (naming the known layers) for an
        unknown name among ``layer_names`` (the taps and hooks)."""
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must have shape (N, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        if not 0 <= start <= stop <= len(self.layers):
            raise ValueError(f"need 0 <= start ({start}) <= stop ({stop}) <= {len(self.layers)}")
        if start > 0 and state is None:
            raise ValueError(f"starting at layer {start} needs the state recorded before that layer")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if compute_dtype != torch.float32 and compute_dtype not in self.fast_dtypes:
            allowed = ", ".join(str(dtype) for dtype in (torch.float32, *self.fast_dtypes))
            raise ValueError(f"compute_dtype must be one of {allowed}, got {compute_dtype}")
        for name in layer_names:
            self.layer_index(name)

    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments: ``type(self)(**config())`` rebuilds it."""
        raise NotImplementedError

    def forward(self, z: Tensor, c: Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "const") -> Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesize(ws, noise_mode=noise_mode).image


def layer_noise_generator(noise_seed: int, layer_index: int) -> torch.Generator:
    """The random source of one layer's noise in "random" mode: one per (seed, layer), so resuming
    at any layer draws the same noise as a full pass."""
    seed = (int(noise_seed) * 1_000_003 + layer_index) % (2**63)
    return torch.Generator(device="cpu").manual_seed(seed)


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters written as escapes, so an error
    message that quotes a file's contents (a key, a name) stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class CheckpointError(Exception):
    """A checkpoint could not be loaded; the message is one line naming the file and the problem."""

    def __init__(self, path: object, problem: str):
        self.path = str(path)
        self.problem = one_line(problem)
        super().__init__(one_line(f"{self.path}: {problem}"))
