"""rosinality/stylegan2-pytorch checkpoints (``g_ema`` state dict, optionally ``latent_avg``).

rosinality's generator is the original StyleGAN2 config-f network re-implemented: the same mapping
network (pixel norm, equalised-lr linear layers with lr multiplier 0.01, leaky ReLU x sqrt 2), the same
modulated/demodulated convolutions, noise, FIR [1,3,3,1] up-sampling and skip toRGB.  Its
up-sampling convolution weights are stored spatially flipped relative to TensorFlow, exactly like
NVlabs' (both converters flip them), so every tensor maps onto NVlabs' ``Generator`` one to one:

    style.{i+1}.*                  -> mapping.fc{i}.*
    input.input[0]                 -> synthesis.b4.const
    conv1 / to_rgb1                -> synthesis.b4.conv1 / synthesis.b4.torgb
    convs.{2k} / convs.{2k+1}      -> synthesis.b{8*2^k}.conv0 / .conv1
    to_rgbs.{k}                    -> synthesis.b{8*2^k}.torgb
    *.conv.weight[0]               -> *.weight       (rosinality keeps a leading batch axis)
    *.conv.modulation.*            -> *.affine.*
    *.noise.weight[0]              -> *.noise_strength
    *.activate.bias / to_rgb bias  -> *.bias
    noises.noise_{n}[0, 0]         -> noise_const of the n-th styled conv
    latent_avg                     -> mapping.w_avg

The network is then an ordinary ``StyleGAN2Generator`` with an explicit channel table and no conv
clamping.  The file is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from typing import Any

import torch

from ganinterface.models import limits
from ganinterface.models.base import CheckpointError, GeneratorBase

log = logging.getLogger(__name__)

ROSINALITY_LR_MULTIPLIER = 0.01  # rosinality's lr_mlp default; train.py never changes it
STANDARD_BLUR_TAPS = (1.0, 3.0, 3.0, 1.0)
W_AVG_SAMPLES = 10_000  # checkpoints from rosinality's train.py carry no latent_avg
W_AVG_SEED = 0
NOT_ROSINALITY_SHAPES = "the shapes of a rosinality generator's"


@dataclasses.dataclass(frozen=True)
class RosinalityConfig:
    """What rosinality's ``Generator(size, style_dim, n_mlp, channel_multiplier)`` was built with."""

    size: int
    style_dim: int
    n_mlp: int
    channels: dict[int, int]  # block resolution -> output channels
    channel_multiplier: int | None  # None: non-standard table, or below 64 px where it cannot be told

    def generator_kwargs(self) -> dict[str, Any]:
        return dict(z_dim=self.style_dim, c_dim=0, w_dim=self.style_dim, img_resolution=self.size,
                    img_channels=3,
                    mapping_kwargs=dict(num_layers=self.n_mlp, lr_multiplier=ROSINALITY_LR_MULTIPLIER),
                    channels=dict(self.channels), architecture="skip", conv_clamp=None,
                    resample_filter=list(STANDARD_BLUR_TAPS))


@dataclasses.dataclass
class RosinalityCheckpoint:
    generator: GeneratorBase
    config: RosinalityConfig
    w_avg_source: str  # "latent_avg" or an explanation of how it was estimated


def is_rosinality_checkpoint(data: Any) -> bool:
    return isinstance(data, Mapping) and isinstance(data.get("g_ema"), Mapping) and any(
        str(key).startswith("style.") for key in data["g_ema"])


def rosinality_standard_channels(size: int, channel_multiplier: int) -> dict[int, int]:
    """rosinality's ``Generator.channels`` table, restricted to the blocks a ``size`` model has."""
    table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
    return {res: (c if res <= 32 else c * channel_multiplier) for res, c in table.items() if res <= size}


def infer_config(state: Mapping[str, torch.Tensor], path: object) -> RosinalityConfig:
    """Read size, style_dim, n_mlp and channels off the tensor shapes of ``g_ema``."""
    _require(state, ("input.input", "style.1.weight", "conv1.conv.weight", "to_rgb1.conv.weight"), path)
    if any(key.startswith("to_rgbs.0.iwt") or ".dwt" in key for key in state):
        raise CheckpointError(path, "rosinality SWAGAN checkpoints are not supported")
    n_mlp = len([key for key in state if re.fullmatch(r"style\.\d+\.weight", key)])
    style_dim = int(state["style.1.weight"].shape[1])
    conv_count = len([key for key in state if re.fullmatch(r"convs\.\d+\.conv\.weight", key)])
    if conv_count % 2:
        raise CheckpointError(path, f"odd number of styled convolutions ({conv_count}) in g_ema")
    channels = {4: int(state["input.input"].shape[1])}
    for k in range(conv_count // 2):
        channels[8 << k] = int(state[f"convs.{2 * k}.conv.weight"].shape[1])
    size = max(channels)
    # below 64 px every multiplier gives the same table, so it cannot be told (nor does it matter)
    multiplier = next((m for m in (1, 2, 4, 8) if rosinality_standard_channels(size, m) == channels), None)
    if size < 64:
        multiplier = None
    return RosinalityConfig(size=size, style_dim=style_dim, n_mlp=n_mlp, channels=channels,
                            channel_multiplier=multiplier)


def styled_conv_names(size: int) -> list[tuple[str, str]]:
    """(rosinality module, NVlabs layer) for every styled convolution, in noise-buffer order."""
    names = [("conv1", "synthesis.b4.conv1")]
    res, k = 8, 0
    while res <= size:
        names += [(f"convs.{2 * k}", f"synthesis.b{res}.conv0"), (f"convs.{2 * k + 1}", f"synthesis.b{res}.conv1")]
        res, k = res * 2, k + 1
    return names


def torgb_names(size: int) -> list[tuple[str, str]]:
    names = [("to_rgb1", "synthesis.b4.torgb")]
    res, k = 8, 0
    while res <= size:
        names.append((f"to_rgbs.{k}", f"synthesis.b{res}.torgb"))
        res, k = res * 2, k + 1
    return names


def to_nvlabs_state_dict(state: Mapping[str, torch.Tensor], config: RosinalityConfig,
                         path: object) -> dict[str, torch.Tensor]:
    """rosinality ``g_ema`` tensors under NVlabs names (everything except w_avg and FIR filters)."""
    out: dict[str, torch.Tensor] = {}
    for i in range(config.n_mlp):
        out[f"mapping.fc{i}.weight"] = state[f"style.{i + 1}.weight"]
        out[f"mapping.fc{i}.bias"] = state[f"style.{i + 1}.bias"]
    out["synthesis.b4.const"] = state["input.input"][0]
    for n, (src, dst) in enumerate(styled_conv_names(config.size)):
        _require(state, (f"{src}.conv.weight", f"noises.noise_{n}"), path)
        out[f"{dst}.weight"] = state[f"{src}.conv.weight"][0]
        out[f"{dst}.affine.weight"] = state[f"{src}.conv.modulation.weight"]
        out[f"{dst}.affine.bias"] = state[f"{src}.conv.modulation.bias"]
        out[f"{dst}.noise_strength"] = state[f"{src}.noise.weight"].reshape(())
        out[f"{dst}.bias"] = state[f"{src}.activate.bias"]
        out[f"{dst}.noise_const"] = state[f"noises.noise_{n}"][0, 0]
    for src, dst in torgb_names(config.size):
        out[f"{dst}.weight"] = state[f"{src}.conv.weight"][0]
        out[f"{dst}.affine.weight"] = state[f"{src}.conv.modulation.weight"]
        out[f"{dst}.affine.bias"] = state[f"{src}.conv.modulation.bias"]
        out[f"{dst}.bias"] = state[f"{src}.bias"].reshape(-1)
    _check_blur_kernels(state, path)
    return out


def load_rosinality(data: Mapping[str, Any], path: object) -> RosinalityCheckpoint:
    from ganinterface.models.nvlabs_pkl import first_line, load_state_dict_checked
    from ganinterface.models.stylegan2 import StyleGAN2Generator

    state = {str(k): v for k, v in data["g_ema"].items()}
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(path, f"g_ema entry {bad[0]} is not a tensor")
    try:
        config = infer_config(state, path)
    except IndexError:
        raise CheckpointError(path, f"g_ema tensors do not have {NOT_ROSINALITY_SHAPES}") from None
    try:
        generator = StyleGAN2Generator(**config.generator_kwargs())
    except limits.BAD_CONFIG as error:
        raise CheckpointError(path, f"g_ema describes no generator this program builds ({error})") from None
    weights = generator.state_dict()  # keeps our FIR filter buffers and a w_avg placeholder
    try:
        mapped = to_nvlabs_state_dict(state, config, path)
    except KeyError as error:
        raise CheckpointError(path, f"g_ema has no {error.args[0]}") from None
    except (IndexError, RuntimeError) as error:  # a tensor that cannot be indexed or reshaped so
        raise CheckpointError(path, f"g_ema tensors do not have {NOT_ROSINALITY_SHAPES} "
                                    f"({first_line(error)})") from None
    unmapped = [k for k in weights if k not in mapped and not k.endswith(("resample_filter", "w_avg"))]
    if unmapped:
        raise CheckpointError(path, f"no rosinality weights for {unmapped[0]}")
    weights.update(mapped)
    load_state_dict_checked(generator, weights, path)
    latent_avg = data.get("latent_avg")
    if isinstance(latent_avg, torch.Tensor):
        if latent_avg.numel() != config.style_dim:
            raise CheckpointError(path, f"latent_avg has {latent_avg.numel()} values, style_dim is "
                                        f"{config.style_dim}")
        w_avg_source = "latent_avg"
        w_avg = latent_avg.reshape(-1).float()
    else:
        w_avg_source = f"mean of {W_AVG_SAMPLES} mapped random z (seed {W_AVG_SEED}); file has no latent_avg"
        w_avg = estimate_w_avg(generator, config.style_dim)
    _set_w_avg(generator, w_avg, path)
    log.info("loaded rosinality checkpoint %s (w_avg: %s)", path, w_avg_source)
    return RosinalityCheckpoint(generator=generator.eval().requires_grad_(False), config=config,
                                w_avg_source=w_avg_source)


def load_rosinality_discriminator(data: Any, path: object) -> torch.nn.Module | None:
    """The file's discriminator (its ``d`` state dict, which rosinality's train.py saves) as NVlabs'
    resnet D, whose layers it mirrors (``discriminator_names``); None when the file has no ``d``."""
    from ganinterface.models.nvlabs_pkl import load_state_dict_checked
    from ganinterface.models.stylegan2_discriminator import StyleGAN2Discriminator

    stored = data.get("d") if isinstance(data, Mapping) else None
    if not isinstance(stored, Mapping) or not stored:
        return None
    state = {str(k): v for k, v in stored.items()}
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(path, f"d entry {bad[0]} is not a tensor")
    try:
        size, channels = _discriminator_sizes(state)
        discriminator = StyleGAN2Discriminator(size, channels)
        mapped = {nvlabs: state[ours] for ours, nvlabs in discriminator_names(size).items()}
    except KeyError as error:
        raise CheckpointError(path, f"d has no {error.args[0]} (not a rosinality StyleGAN2 discriminator)") from None
    except (IndexError, ValueError) as error:
        raise CheckpointError(path, f"d tensors do not have the shapes of a rosinality discriminator's "
                                    f"({error})") from None
    _check_blur_kernels(state, path)
    weights = discriminator.state_dict()  # keeps our FIR filter buffers
    weights.update(mapped)
    load_state_dict_checked(discriminator, weights, path)
    return discriminator.eval().requires_grad_(False)


def _discriminator_sizes(state: Mapping[str, torch.Tensor]) -> tuple[int, dict[int, int]]:
    """(image size, resolution -> channels): a residual block per halving down to 4 px."""
    blocks = len([key for key in state if re.fullmatch(r"convs\.\d+\.conv2\.1\.weight", key)])
    size = 4 << blocks
    channels = {size: int(state["convs.0.0.weight"].shape[0])}
    for index in range(1, blocks + 1):
        channels[size >> index] = int(state[f"convs.{index}.conv2.1.weight"].shape[0])
    return size, channels


def discriminator_names(size: int) -> dict[str, str]:
    """rosinality ``Discriminator`` key -> NVlabs key, for a ``size`` px model (blur kernels and
    NVlabs' filters are left out: both are the standard [1, 3, 3, 1])."""
    names = {"convs.0.0.weight": f"b{size}.fromrgb.weight", "convs.0.1.bias": f"b{size}.fromrgb.bias"}
    index, res = 1, size
    while res > 4:
        block = f"convs.{index}"
        names.update({f"{block}.conv1.0.weight": f"b{res}.conv0.weight",
                      f"{block}.conv1.1.bias": f"b{res}.conv0.bias",
                      f"{block}.conv2.1.weight": f"b{res}.conv1.weight",
                      f"{block}.conv2.2.bias": f"b{res}.conv1.bias",
                      f"{block}.skip.1.weight": f"b{res}.skip.weight"})
        index, res = index + 1, res // 2
    names.update({"final_conv.0.weight": "b4.conv.weight", "final_conv.1.bias": "b4.conv.bias",
                  "final_linear.0.weight": "b4.fc.weight", "final_linear.0.bias": "b4.fc.bias",
                  "final_linear.1.weight": "b4.out.weight", "final_linear.1.bias": "b4.out.bias"})
    return names


@torch.no_grad()
def estimate_w_avg(generator: GeneratorBase, z_dim: int) -> torch.Tensor:
    z = torch.randn(W_AVG_SAMPLES, z_dim, generator=torch.Generator().manual_seed(W_AVG_SEED))
    return generator.mapping(z)[:, 0].mean(0)


def _set_w_avg(generator: GeneratorBase, w_avg: torch.Tensor, path: object) -> None:
    buffers = dict(generator.named_buffers())
    if "mapping.w_avg" not in buffers:
        raise CheckpointError(path, "the StyleGAN2 generator has no mapping.w_avg buffer")
    with torch.no_grad():
        buffers["mapping.w_avg"].copy_(w_avg)


def _check_blur_kernels(state: Mapping[str, torch.Tensor], path: object) -> None:
    """Our FIR filters are [1,3,3,1]; rosinality lets you choose another blur_kernel."""
    taps = torch.tensor(STANDARD_BLUR_TAPS)
    standard = torch.outer(taps, taps)
    for key, kernel in state.items():
        if key.endswith(".kernel") and kernel.ndim == 2:
            if not torch.allclose(kernel / kernel.sum(), standard / standard.sum()):
                raise CheckpointError(path, f"{key} is not the standard [1, 3, 3, 1] blur kernel")


def _require(state: Mapping[str, Any], keys: tuple[str, ...], path: object) -> None:
    for key in keys:
        if key not in state:
            raise CheckpointError(path, f"g_ema has no {key} (not a rosinality StyleGAN2 generator)")
