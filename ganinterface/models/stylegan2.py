"""StyleGAN2 generator with NVlabs' numerics and state-dict names, run layer by layer.

Module names and parameter layout follow NVlabs ``training/networks_stylegan2.py`` (stylegan3 and
stylegan2-ada-pytorch repositories), so ``load_state_dict(nvlabs_generator.state_dict())`` works
with ``strict=True``.  Synthesis is exposed as a flat list of layers (``b4.conv1``, ``b4.torgb``,
``b8.conv0``, ...) so that a render can resume from any layer (see ``GeneratorBase``).

ganinterface extras: ``img_width`` for non-square images (the 4-pixel-high constant input gets the
same aspect ratio; blocks are still named by height) and ``channels`` to give the channel count of
every block explicitly.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np
import torch

from ganinterface.models import limits, ops
from ganinterface.models.base import (
    GeneratorBase,
    LayerHook,
    LayerInfo,
    LayerState,
    SynthesisOutput,
    layer_noise_generator,
    runs_on,
)
from ganinterface.models.stylegan2_layers import (
    RESNET_GAIN,
    MappingNetwork,
    SynthesisBlock,
    SynthesisLayer,
    SynthesisNetwork,
    Tensor,
)

ARCHITECTURES = ("orig", "skip", "resnet")
# NVlabs kwargs that only choose CUDA/fp16 execution strategies; they never change float32 results.
IGNORED_SYNTHESIS_KWARGS = frozenset({"num_fp16_res", "fp16_channels_last", "fused_modconv_default", "channels_last"})


# ---- configuration ---------------------------------------------------------------------------------
# In a reduced precision the first blocks still run in float32 while they hold at most this share
# of the convolutions' work: every later layer amplifies their rounding.  At 1024 px (paper config,
# random weights, 5 seeds) bfloat16 drafts with the blocks up to 32 px in float32 differ from the
# exact image by at most 0.017 instead of 0.027, for 5.5% of the work.
FLOAT32_LEADING_WORK = 1 / 16


@dataclasses.dataclass(frozen=True)
class _Step:
    """How to run one entry of ``generator.layers``."""

    block: int  # block height
    role: str  # "conv0", "conv1", "torgb"
    w_index: int


def _leading_blocks(blocks: dict[int, SynthesisBlock], share: float) -> frozenset[int]:
    """The first blocks (by height) whose 3x3 convolutions together do at most ``share`` of the
    whole synthesis' multiply-adds."""
    def work(height: int) -> int:
        block = blocks[height]
        area = height * block.conv1.size[1]
        out = block.conv1.weight.shape[0]
        return out * out * area + block.in_channels * out * area // 4  # conv1, then conv0 (up)

    total = sum(map(work, blocks))
    leading, running = set(), 0
    for height in sorted(blocks):
        running += work(height)
        if running > share * total:
            break
        leading.add(height)
    return frozenset(leading)


def _block_channels(heights: list[int], channel_base: int, channel_max: int,
                    channels: Mapping[Any, int] | None) -> dict[int, int]:
    if channels is None:
        channel_base = limits.whole("channel_base", channel_base, high=limits.MAX_VALUES)
        channel_max = limits.whole("channel_max", channel_max)
        table = {h: min(channel_base // h, channel_max) for h in heights}
    elif isinstance(channels, Mapping):
        table = {int(k): int(v) for k, v in channels.items()}
    else:
        raise ValueError(f"channels must map block heights to channel counts, got {type(channels).__name__}")
    missing = [h for h in heights if h not in table]
    if missing:
        raise ValueError(f"channels table has no entry for block heights {missing}")
    return {h: limits.whole(f"channels of block {h}", table[h]) for h in heights}


def _mapping_sizes(mapping_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """The mapping network's size arguments, with ``MappingNetwork``'s defaults."""
    kwargs = dict(mapping_kwargs or {})
    return dict(num_layers=kwargs.get("num_layers", 8), embed_features=kwargs.get("embed_features"),
                layer_features=kwargs.get("layer_features"))


def _stored_values(heights: list[int], aspect: float, block_channels: dict[int, int], w_dim: int,
                   img_channels: int, options: SynthesisOptions) -> int:
    """Parameters and buffers the synthesis network will hold (resampling filters aside)."""
    kernel = limits.whole("kernel_size", options.kernel_size, high=limits.MAX_KERNEL)

    def conv(in_channels: int, out_channels: int, area: int, size: int = kernel) -> int:
        return in_channels * out_channels * size * size + (w_dim + 1) * in_channels + out_channels + area

    total = 0
    for h in heights:
        area, out = h * max(1, int(h * aspect)), block_channels[h]
        if h == 4:
            total += out * area + conv(out, out, area)
        else:
            total += conv(block_channels[h // 2], out, area) + conv(out, out, area)
            total += block_channels[h // 2] * out if options.architecture == "resnet" else 0
        total += conv(out, img_channels, 0, size=1)
    return total


@dataclasses.dataclass(frozen=True)
class SynthesisOptions:
    """The NVlabs synthesis keyword arguments that change results (defaults: stylegan3 repository)."""

    channel_base: int = 32768  # channels of a block = min(channel_base // height, channel_max)
    channel_max: int = 512
    architecture: str = "skip"  # "orig", "skip" or "resnet"
    resample_filter: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0)  # FIR taps for 2x up-sampling
    conv_clamp: float | None = 256  # clamp conv outputs to +-conv_clamp (None: no clamp)
    use_noise: bool = True
    kernel_size: int = 3
    activation: str = "lrelu"
    resize: int | None = None  # forks (DragGAN): the final image resized to resize x resize

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> SynthesisOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - known - IGNORED_SYNTHESIS_KWARGS)
        if unknown:
            raise TypeError(f"StyleGAN2Generator: unsupported synthesis argument(s) {', '.join(unknown)}")
        values = {k: v for k, v in kwargs.items() if k in known}
        if "resample_filter" in values:
            values["resample_filter"] = tuple(float(t) for t in values["resample_filter"])
        options = cls(**values)
        if options.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {options.architecture!r}")
        if options.activation not in ops.ACTIVATIONS:
            raise ValueError(f"unknown activation {options.activation!r}")
        if options.resize is not None:
            limits.resolution("resize", options.resize)
        return options


# ---- the generator ---------------------------------------------------------------------------------
class StyleGAN2Generator(GeneratorBase):
    """NVlabs StyleGAN2 ``Generator`` (init kwargs verbatim) with the ganinterface layer API."""

    architecture = "stylegan2"

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        mapping_kwargs: Mapping[str, Any] | None = None,
        synthesis_kwargs: Mapping[str, Any] | None = None,
        img_width: int | None = None,
        channels: Mapping[Any, int] | None = None,
        **more_synthesis_kwargs: Any,
    ):
        """NVlabs ``Generator`` arguments: stylegan3-repo style (synthesis options as keywords) or
        stylegan2-ada style (``synthesis_kwargs={...}``); see ``SynthesisOptions`` for the options."""
        options = SynthesisOptions.from_kwargs({**(synthesis_kwargs or {}), **more_synthesis_kwargs})
        z_dim, c_dim = limits.whole("z_dim", z_dim, low=0), limits.whole("c_dim", c_dim, low=0)
        w_dim, img_channels = limits.whole("w_dim", w_dim), limits.whole("img_channels", img_channels)
        img_resolution = limits.resolution("img_resolution", img_resolution)
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
        width = img_resolution if img_width is None else limits.resolution("img_width", img_width)
        if (4 * width) % img_resolution:
            raise ValueError(
                f"img_width {width} must make the 4-pixel-high input a whole number of pixels wide "
                f"(4 * width divisible by height {img_resolution})")

        heights = [2**i for i in range(2, int(np.log2(img_resolution)) + 1)]
        block_channels = _block_channels(heights, options.channel_base, options.channel_max, channels)
        limits.check_values("this StyleGAN2 generator", _stored_values(
            heights, width / img_resolution, block_channels, w_dim, img_channels, options)
            + limits.mapping_values(z_dim, c_dim, w_dim, **_mapping_sizes(mapping_kwargs)))
        super().__init__()  # only now: nothing is allocated for a configuration refused above

        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis_size = (img_resolution, width)  # of the last layers; the image's unless resized
        self.img_height, self.img_width = self.synthesis_size if options.resize is None else (options.resize,) * 2
        self.options = options
        self.fused_modconv: bool | str = "auto"  # True / False / "auto" (fused for one-sample inference)
        self.memory_format = torch.channels_last  # of the activations (faster convs on CPU); images are NCHW
        self._config = dict(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
            mapping_kwargs=dict(mapping_kwargs or {}), **dataclasses.asdict(options), img_width=img_width,
            channels=None if channels is None else {str(k): int(v) for k, v in channels.items()},
        )
        self._config["resample_filter"] = list(options.resample_filter)
        architecture, resample_filter, conv_clamp = options.architecture, options.resample_filter, options.conv_clamp
        use_noise, kernel_size, activation = options.use_noise, options.kernel_size, options.activation

        layer_kwargs = dict(use_noise=use_noise, kernel_size=kernel_size, activation=activation)
        blocks: dict[int, SynthesisBlock] = {}
        for h in heights:
            blocks[h] = SynthesisBlock(
                in_channels=block_channels[h // 2] if h > 4 else 0, out_channels=block_channels[h],
                w_dim=w_dim, size=(h, h * width // img_resolution), img_channels=img_channels,
                is_last=(h == img_resolution), architecture=architecture,
                resample_filter=resample_filter, conv_clamp=conv_clamp, layer_kwargs=layer_kwargs)
        self.synthesis = SynthesisNetwork(blocks)
        self._steps, self.layers, self.num_ws = self._plan(heights, blocks, block_channels)
        self._float32_blocks = _leading_blocks(blocks, FLOAT32_LEADING_WORK)
        # Registered under the NVlabs name "mapping" (state-dict keys mapping.*); the attribute
        # `mapping` stays the GeneratorBase method, so reach the module through `mapping_network`.
        self._modules["mapping"] = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, **(mapping_kwargs or {}))
        self.eval()

    def _plan(self, heights, blocks, block_channels) -> tuple[list[_Step], list[LayerInfo], int]:
        steps, layers = [], []
        w_idx = 0
        for h in heights:
            block = blocks[h]
            size = (h, h * self.synthesis_size[1] // self.synthesis_size[0])
            roles = ["conv1"] if block.in_channels == 0 else ["conv0", "conv1"]
            for i, role in enumerate(roles):
                steps.append(_Step(h, role, w_idx + i))
                layers.append(LayerInfo(f"b{h}.{role}", block_channels[h], *size, (w_idx + i,), "conv"))
            if block.has_torgb:
                steps.append(_Step(h, "torgb", w_idx + len(roles)))
                layers.append(LayerInfo(f"b{h}.torgb", self.img_channels, *size, (w_idx + len(roles),), "torgb"))
            w_idx += len(roles)
        return steps, layers, w_idx + 1

    # ---- GeneratorBase -----------------------------------------------------------------------
    @property
    def mapping_network(self) -> MappingNetwork:
        return self._modules["mapping"]

    @property
    def w_avg(self) -> Tensor:
        net = self.mapping_network
        return net.w_avg if net.w_avg_beta is not None else torch.zeros(self.w_dim)

    def mapping(self, z: Tensor, c: Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_emas: bool = False) -> Tensor:
        if self.c_dim > 0 and c is None:
            raise ValueError(f"this generator is conditional: pass c with {self.c_dim} columns")
        with torch.autocast(device_type=z.device.type, enabled=False):
            return self.mapping_network(z, c, truncation_psi=truncation_psi,
                                        truncation_cutoff=truncation_cutoff, update_emas=update_emas)

    def config(self) -> dict[str, Any]:
        return copy.deepcopy(self._config)

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
        n_layers = len(self.layers)
        stop = n_layers if stop is None else stop
        hooks = hooks or {}
        self._check_synthesis_args(ws, start, state, stop, noise_mode, [*taps, *hooks], compute_dtype)
        noise_maps = noise_maps or {}
        self._check_noise_maps(noise_maps)
        style_offsets = style_offsets or {}
        self._check_style_offsets(style_offsets, ws.shape[0])
        taps = set(taps)
        ws = ws.to(torch.float32)
        fused = self._use_fused(ws)
        current: LayerState = dict(state) if start > 0 else {}
        kept: dict[int, LayerState] = {}
        tapped: dict[str, Tensor] = {}
        for k in range(start, stop):
            if k in keep_states:
                kept[k] = dict(current)
            info = self.layers[k]
            current, activation = self._run_step(k, current, ws, fused, noise_mode, noise_seed,
                                                 hooks.get(info.name), noise_maps.get(info.name), compute_dtype,
                                                 style_offsets.get(info.name))
            if info.name in taps:
                tapped[info.name] = activation
        if stop in keep_states:
            kept[stop] = dict(current)
        image = current["img"] if stop == n_layers else torch.empty(0)
        if stop == n_layers and self.options.resize is not None:
            image = ops.resize_square(image, self.options.resize)
        return SynthesisOutput(image=image, taps=tapped, states=kept)

    def style_sizes(self) -> dict[str, int]:
        sizes = {}
        for step, info in zip(self._steps, self.layers):
            layer = getattr(getattr(self.synthesis, f"b{step.block}"), step.role)
            sizes[info.name] = layer.affine.weight.shape[0]
        return sizes

    # ---- internals ---------------------------------------------------------------------------
    def stored_noise(self) -> dict[str, Tensor]:
        stored = {}
        for k, info in enumerate(self.layers):
            step = self._steps[k]
            layer = getattr(getattr(self.synthesis, f"b{step.block}"), step.role)
            if step.role != "torgb" and layer.use_noise:
                stored[info.name] = layer.noise_const
        return stored

    @property
    def fast_dtypes(self) -> tuple[torch.dtype, ...]:
        """bfloat16 always; float16 (5 fewer exponent bits) only where conv_clamp bounds the
        activations, as NVlabs requires for its fp16 layers."""
        if self.options.conv_clamp is None:
            return (torch.bfloat16,)
        return (torch.bfloat16, torch.float16)

    def _use_fused(self, ws: Tensor) -> bool:
        """"auto": modulated weights per sample for one sample, and for a batch that runs sample
        by sample (``models.base``, *Batches*: then its images are the bytes of single renders);
        any other batch shares the plain weight (one convolution for the batch, faster on a GPU).
        So does a pass whose gradients reach the latents (projection): per-sample weights would
        need their own gradient, the shared weight needs none (a third less time a step)."""
        if self.fused_modconv == "auto":
            to_latents = torch.is_grad_enabled() and ws.requires_grad
            return not self.training and not to_latents and runs_on(ws) == ws.shape[0]
        return bool(self.fused_modconv)

    def _run_step(self, k: int, state: LayerState, ws: Tensor, fused: bool, noise_mode: str,
                  noise_seed: int, hook: LayerHook | None,
                  noise_map: Tensor | None, compute_dtype: torch.dtype,
                  style_offset: Tensor | None) -> tuple[LayerState, Tensor]:
        step = self._steps[k]
        block: SynthesisBlock = getattr(self.synthesis, f"b{step.block}")
        w = ws[:, step.w_index]
        state = dict(state)
        if step.role == "torgb":  # in its input's precision: after an exact state, exact
            y = block.torgb(state["x"], w, fused_modconv=fused, style_offset=style_offset).to(torch.float32, memory_format=torch.contiguous_format)
            if hook is not None:
                y = hook(y)
            img = state.get("img")
            state["img"] = y if img is None else img + y
            return state, y

        layer: SynthesisLayer = getattr(block, step.role)
        if step.block in self._float32_blocks:
            compute_dtype = torch.float32
        generator = layer_noise_generator(noise_seed, k) if noise_mode == "random" else None
        noise = layer.noise(ws.shape[0], noise_mode, generator, ws.device, noise_map)
        resnet = hasattr(block, "skip")
        if step.role == "conv1" and block.in_channels == 0:
            x = block.const.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            x = x.to(compute_dtype).contiguous(memory_format=self.memory_format)
            x = layer(x, w, noise, fused, style_offset=style_offset)
        elif step.role == "conv0":
            if "img" in state:  # up-sampled as the block starts, so a re-render from conv1 on skips it
                state["img"] = ops.upsample2d(state["img"], block.resample_filter)
            x_in = state["x"].to(compute_dtype)
            if resnet:
                state["residual"] = block.skip(x_in, gain=RESNET_GAIN)
            x = layer(x_in, w, noise, fused, style_offset=style_offset)
        elif resnet:
            x = layer(state["x"].to(compute_dtype), w, noise, fused, gain=RESNET_GAIN, style_offset=style_offset)
            x = state.pop("residual").to(compute_dtype) + x
        else:
            x = layer(state["x"].to(compute_dtype), w, noise, fused, style_offset=style_offset)
        if hook is not None:
            x = hook(x)
        state["x"] = x
        return state, x
