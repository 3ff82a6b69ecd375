"""TensorFlow StyleGAN2 and StyleGAN2-ADA (TF) generators mapped onto ``StyleGAN2Generator``.

The TF generator is a ``G_main`` network with a ``G_mapping`` and a ``G_synthesis_stylegan2``
(StyleGAN2) or ``G_synthesis`` (StyleGAN2-ADA) component.  Its variables map one to one onto the
PyTorch port's parameters, with the conventions NVlabs' own converter follows
(``legacy.py`` of stylegan2-ada-pytorch):

* dense weights are stored (in, out): transposed;
* convolution weights are stored (kh, kw, in, out): permuted to (out, in, kh, kw), and spatially
  flipped for the up-sampling convolutions, which TensorFlow runs as a transposed convolution;
* the style bias gets the +1 that TensorFlow adds at run time (``mod_bias + 1``);
* the constant input and the noise images lose their leading batch axes;
* noise image ``noiseN`` belongs to synthesis layer N (0 for 4x4, then 2 per resolution).

Sizes (latent widths, mapping depth, channel counts) are read from the variables' shapes, options
(architecture, filters, activations, clamping) from the static kwargs with each repository's
defaults; every variable must fit and be used, so a file that is not what it claims is refused in
one line naming the first variable that is wrong.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from ganinterface.models import limits, nvlabs_pkl
from ganinterface.models.base import CheckpointError
from ganinterface.models.stylegan2 import StyleGAN2Generator
from ganinterface.models.tf_pickle import (
    TRANSFORMS,
    TFModel,
    TFNetwork,
    check_stated_sizes,
    shape_of,
    variable,
    whole_kwarg,
)

log = logging.getLogger(__name__)

SYNTHESIS_FUNCTIONS = {"G_synthesis_stylegan2": "StyleGAN2", "G_synthesis": "StyleGAN2-ADA"}
# Static kwargs that only steer training, TensorFlow execution or the defaults of a call (we take
# truncation and noise from the user); none changes what the generator computes for given inputs.
RUNTIME_KWARGS = frozenset({
    "truncation_psi", "truncation_cutoff", "truncation_psi_val", "truncation_cutoff_val",
    "dlatent_avg_beta", "w_avg_beta", "style_mixing_prob", "is_training", "is_validation",
    "is_template_graph", "force_clean_graph", "randomize_noise", "fused_modconv", "dtype",
    "num_fp16_res", "structure", "dlatent_broadcast", "return_dlatents", "mapping_func",
    "synthesis_func", "components",
})
# Static kwargs read below (sizes are cross-checked against the variables' shapes).
MODEL_KWARGS = frozenset({
    "latent_size", "label_size", "dlatent_size", "num_channels", "resolution", "mapping_layers",
    "mapping_fmaps", "mapping_lrmul", "mapping_nonlinearity", "normalize_latents", "label_fmaps",
    "fmap_base", "fmap_decay", "fmap_min", "fmap_max", "fmap_const", "use_noise", "architecture",
    "nonlinearity", "conv_clamp", "resample_kernel",
})
CONFIG_NAMES = {16384: "config-f", 8192: "config-e"}  # fmap_base of NVlabs' skip-architecture configs



def generator_from_tf(network: TFNetwork, path: object) -> TFModel:
    """Our StyleGAN2 generator with the weights of a TF ``G_main`` network."""
    mapping, synthesis = network.component("mapping", path), network.component("synthesis", path)
    if synthesis.build_func_name not in SYNTHESIS_FUNCTIONS:
        raise CheckpointError(path, f"StyleGAN2 synthesis network built by {synthesis.build_func_name!r} "
                                    f"is not supported (only {', '.join(SYNTHESIS_FUNCTIONS)}; "
                                    "StyleGAN2 configs A-D are not)")
    if mapping.build_func_name != "G_mapping":
        raise CheckpointError(path, f"StyleGAN2 mapping network built by {mapping.build_func_name!r} "
                                    "is not supported (only G_mapping)")
    variables = network.all_variables()
    if "mapping/LabelConcat/weight" in variables:
        raise CheckpointError(path, "conditional StyleGAN2 with LabelConcat (NVlabs' stylegan2 "
                                    "repository) is not supported; StyleGAN2-ADA's LabelEmbed is")
    kwargs = {**network.static_kwargs, **mapping.static_kwargs, **synthesis.static_kwargs}
    if kwargs.get("normalize_latents", True) is not True:
        raise CheckpointError(path, "StyleGAN2 mapping without latent normalisation "
                                    "(normalize_latents=False) is not supported")
    init_kwargs = _init_kwargs(kwargs, variables, path)
    try:
        generator = StyleGAN2Generator(**init_kwargs)
    except limits.BAD_CONFIG as error:
        raise CheckpointError(path, f"cannot build the StyleGAN2 generator this TensorFlow file "
                                    f"describes: {nvlabs_pkl.first_line(error)}") from None
    nvlabs_pkl.load_state_dict_checked(generator, _state_dict(generator, variables, path), path)
    generator = generator.eval().requires_grad_(False)
    notes = [f"static kwargs not understood (ignored): {', '.join(unknown)}"
             for unknown in [sorted(set(kwargs) - RUNTIME_KWARGS - MODEL_KWARGS)] if unknown]
    for note in notes:
        log.warning("%s: %s", path, note)
    return TFModel(generator, _model_name(synthesis, generator), tuple(notes))


def _init_kwargs(kwargs: Mapping[str, Any], variables: Mapping[str, np.ndarray], path: object) -> dict[str, Any]:
    """``StyleGAN2Generator`` arguments: sizes from the variables, options from the kwargs."""
    resolution = whole_kwarg(path, "resolution", kwargs.get("resolution", 1024), limits.resolution)
    if resolution < 4 or resolution & (resolution - 1):
        raise CheckpointError(path, f"static kwarg resolution must be a power of two >= 4, got {resolution}")
    num_layers = whole_kwarg(path, "mapping_layers", kwargs.get("mapping_layers", 8),
                        lambda name, v: limits.whole(name, v, 1, limits.MAX_LAYERS))
    c_dim, embed = (shape_of(variables, "mapping/LabelEmbed/weight", 2, path)
                    if "mapping/LabelEmbed/weight" in variables else (0, 0))
    mapping_in, layer_features = shape_of(variables, "mapping/Dense0/weight", 2, path)
    sizes = dict(z_dim=mapping_in - embed, c_dim=c_dim, w_dim=shape_of(variables, "dlatent_avg", 1, path)[0],
                 img_resolution=resolution,
                 img_channels=whole_kwarg(path, "num_channels", kwargs.get("num_channels", 3), limits.whole))
    check_stated_sizes(kwargs, {"latent_size": ("z_dim", sizes["z_dim"], "mapping/Dense0/weight"),
                                "label_size": ("c_dim", c_dim, "mapping/LabelEmbed/weight"),
                                "dlatent_size": ("w_dim", sizes["w_dim"], "dlatent_avg")}, path)
    mapping = dict(num_layers=num_layers, embed_features=embed or None,
                   layer_features=layer_features if num_layers > 1 else None,
                   activation=kwargs.get("mapping_nonlinearity", "lrelu"),
                   lr_multiplier=kwargs.get("mapping_lrmul", 0.01))
    return dict(**sizes, mapping_kwargs=mapping, **_synthesis_options(kwargs, variables, resolution, path))


def _synthesis_options(kwargs: Mapping[str, Any], variables: Mapping[str, np.ndarray], resolution: int,
                       path: object) -> dict[str, Any]:
    heights = [2**i for i in range(2, int(np.log2(resolution)) + 1)]
    channels = {h: shape_of(variables, _conv_scope(h, 1) + "/weight", 4, path)[3] for h in heights}
    fmap_base, fmap_max = kwargs.get("fmap_base", 16384), kwargs.get("fmap_max", 512)
    options = dict(architecture=kwargs.get("architecture", "skip"),
                   resample_filter=_resample_filter(kwargs.get("resample_kernel", [1, 3, 3, 1]), path),
                   conv_clamp=kwargs.get("conv_clamp"), use_noise=kwargs.get("use_noise", True),
                   activation=kwargs.get("nonlinearity", "lrelu"))
    if all(isinstance(v, int) for v in (fmap_base, fmap_max)) and channels == {
            h: min(2 * fmap_base // h, fmap_max) for h in heights}:
        options.update(channel_base=2 * fmap_base, channel_max=fmap_max)
    else:  # fmap_decay, fmap_min or sizes the kwargs do not state: take each block's from its weights
        options["channels"] = channels
    return options


def _resample_filter(kernel: Any, path: object) -> list[float]:
    if kernel is None:  # TensorFlow's "no filtering": a box filter
        return [1.0, 1.0]
    if not isinstance(kernel, (list, tuple)) or not 1 <= len(kernel) <= limits.MAX_KERNEL \
            or not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in kernel):
        raise CheckpointError(path, "static kwarg resample_kernel is not a list of numbers")
    return [float(t) for t in kernel]


def _conv_scope(height: int, index: int) -> str:
    """TF scope of synthesis conv ``index`` (0: up-sampling, 1: the other) of a block."""
    if height == 4:
        return "synthesis/4x4/Conv"
    return f"synthesis/{height}x{height}/" + ("Conv0_up" if index == 0 else "Conv1")


def _noise_index(height: int, index: int) -> int:
    return 0 if height == 4 else int(np.log2(height)) * 2 - 5 + index


def tf_source(key: str) -> tuple[str, str] | None:
    """The TF variable and transform of one of our state-dict keys (None: a fixed filter)."""
    if key.endswith("resample_filter"):
        return None
    rules: list[tuple[str, Callable[..., tuple[str, str]]]] = [
        (r"mapping\.w_avg", lambda: ("dlatent_avg", "same")),
        (r"mapping\.embed\.(weight|bias)",
         lambda p: (f"mapping/LabelEmbed/{p}", "dense" if p == "weight" else "same")),
        (r"mapping\.fc(\d+)\.(weight|bias)",
         lambda i, p: (f"mapping/Dense{i}/{p}", "dense" if p == "weight" else "same")),
        (r"synthesis\.b4\.const", lambda: ("synthesis/4x4/Const/const", "const")),
        (r"synthesis\.b(\d+)\.conv([01])\.noise_const",
         lambda h, i: (f"synthesis/noise{_noise_index(int(h), int(i))}", "noise")),
        (r"synthesis\.b(\d+)\.conv([01])\.(.+)", lambda h, i, p: _layer_source(_conv_scope(int(h), int(i)), p, i == "0")),
        (r"synthesis\.b(\d+)\.torgb\.(.+)", lambda h, p: _layer_source(f"synthesis/{h}x{h}/ToRGB", p, False)),
        (r"synthesis\.b(\d+)\.skip\.weight", lambda h: (f"synthesis/{h}x{h}/Skip/weight", "conv_up")),
    ]
    for pattern, source in rules:
        match = re.fullmatch(pattern, key)
        if match:
            return source(*match.groups())
    raise KeyError(key)


def _layer_source(scope: str, parameter: str, up: bool) -> tuple[str, str]:
    names = {"weight": ("weight", "conv_up" if up else "conv"), "bias": ("bias", "same"),
             "noise_strength": ("noise_strength", "same"), "affine.weight": ("mod_weight", "dense"),
             "affine.bias": ("mod_bias", "mod_bias")}
    name, transform = names[parameter]
    return f"{scope}/{name}", transform


def _state_dict(generator: StyleGAN2Generator, variables: Mapping[str, np.ndarray],
                path: object) -> dict[str, torch.Tensor]:
    state_dict, used = {}, set()
    for key, tensor in generator.state_dict().items():
        source = tf_source(key)
        if source is None:
            state_dict[key] = tensor
            continue
        name, kind = source
        to_torch, tf_shape = TRANSFORMS[kind]
        value = variable(variables, name, tf_shape(tuple(tensor.shape)), path)
        state_dict[key] = torch.from_numpy(np.array(to_torch(value)))  # a contiguous copy
        used.add(name)
    unused = sorted(set(variables) - used)
    if unused:
        raise CheckpointError(path, f"TensorFlow variable {unused[0]} is not part of the StyleGAN2 "
                                    "generator its static kwargs describe"
                                    + (f" (nor are {len(unused) - 1} more)" if len(unused) > 1 else ""))
    return state_dict


def _model_name(synthesis: TFNetwork, generator: StyleGAN2Generator) -> str:
    family = SYNTHESIS_FUNCTIONS[synthesis.build_func_name]
    architecture = generator.options.architecture
    details = [architecture]
    if family == "StyleGAN2" and architecture == "skip" and generator.options.channel_max == 512 \
            and generator.config()["channels"] is None:
        details = [CONFIG_NAMES.get(generator.options.channel_base // 2, architecture)]
    if generator.c_dim:
        details.append(f"conditional, {generator.c_dim} classes")
    return f"{family} ({', '.join(details)})"
