"""TensorFlow StyleGAN (v1) generators (``G_style``) mapped onto ``StyleGAN1Generator``.

A ``G_style`` network holds ``dlatent_avg`` and ``lod`` and has a ``G_mapping`` and a
``G_synthesis`` component (NVlabs ``training/networks_stylegan.py``).  Its variables map one to one
onto our parameters:

* dense weights (``Dense{i}``, ``StyleMod``, ``LabelConcat``) are stored (in, out): transposed;
* convolution weights are stored (kh, kw, in, out): permuted to (out, in, kh, kw).  Unlike
  StyleGAN2's port, the fused up-sampling kernels are *not* flipped: ``stylegan1`` runs them as
  the original does, as a transposed convolution;
* ``Noise/weight`` is the per-channel noise strength; noise image ``noise{k}`` belongs to layer k
  (``4x4/Const`` is layer 0, ``4x4/Conv`` 1, then ``Conv0_up`` and ``Conv1`` of each resolution);
* the constant and the noise images lose their leading batch axes.  A constant wider than
  4 pixels makes a non-square generator.

Only ``ToRGB_lod0`` reaches the image of a finished network (``lod`` 0); the ``ToRGB_lod1..``
layers progressive growing left behind are checked for shape and left out.  Sizes (latent widths,
mapping depth, channels) come from the variables' shapes, options from the static kwargs with the
original defaults; a variable that does not fit is refused in one line naming it.
"""

from __future__ import annotations

import logging
import re
import reprlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from ganinterface.models import limits, nvlabs_pkl
from ganinterface.models.base import CheckpointError
from ganinterface.models.stylegan1 import StyleGAN1Generator, SynthesisOptions, block_channels
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

MODEL = "StyleGAN (v1)"
# Static kwargs that steer training, TensorFlow execution or a call's defaults (truncation psi and
# noise come from the user); none changes what the generator computes for given inputs.
RUNTIME_KWARGS = frozenset({
    "truncation_psi", "truncation_psi_val", "truncation_cutoff_val", "dlatent_avg_beta",
    "style_mixing_prob", "is_training", "is_validation", "is_template_graph", "force_clean_graph",
    "randomize_noise", "dtype", "structure", "dlatent_broadcast", "components",
})
# Static kwargs read below (sizes are cross-checked against the variables' shapes).
MAPPING_KWARGS = {"mapping_layers": "num_layers", "mapping_lrmul": "lr_multiplier",
                  "mapping_nonlinearity": "activation", "normalize_latents": "normalize_latents",
                  "use_wscale": "use_wscale"}
SYNTHESIS_KWARGS = frozenset(f.name for f in SynthesisOptions.__dataclass_fields__.values())
SIZE_KWARGS = frozenset({"latent_size", "label_size", "dlatent_size", "num_channels", "resolution",
                         "mapping_fmaps", "truncation_cutoff", "use_styles", "const_input_layer"})
# Options of the original that no published network changed and this program does not build.
REQUIRED = {"use_styles": True, "const_input_layer": True}


def generator_from_tf(network: TFNetwork, path: object) -> TFModel:
    """Our StyleGAN (v1) generator with the weights of a TF ``G_style`` network."""
    mapping, synthesis = network.component("mapping", path), network.component("synthesis", path)
    for component, build_func in ((mapping, "G_mapping"), (synthesis, "G_synthesis")):
        if component.build_func_name != build_func:
            raise CheckpointError(path, f"StyleGAN (v1) {build_func[2:].lower()} network built by "
                                        f"{component.build_func_name!r} is not supported (only {build_func})")
    mapping_kwargs = {**network.static_kwargs, **mapping.static_kwargs}
    synthesis_kwargs = {**network.static_kwargs, **synthesis.static_kwargs}
    for name, needed in REQUIRED.items():
        if synthesis_kwargs.get(name, needed) != needed:
            raise CheckpointError(path, f"StyleGAN (v1) with {name}={reprlib.repr(synthesis_kwargs[name])} "
                                        "is not supported")
    variables = network.all_variables()
    _check_finished(variables, path)
    init_kwargs = _init_kwargs(network.static_kwargs, mapping_kwargs, synthesis_kwargs, variables, path)
    try:
        generator = StyleGAN1Generator(**init_kwargs)
    except limits.BAD_CONFIG as error:
        raise CheckpointError(path, f"cannot build the StyleGAN (v1) generator this TensorFlow file "
                                    f"describes: {nvlabs_pkl.first_line(error)}") from None
    nvlabs_pkl.load_state_dict_checked(generator, _state_dict(generator, variables, path), path)
    generator = generator.eval().requires_grad_(False)
    every_kwarg = {**mapping_kwargs, **synthesis_kwargs}
    unknown = sorted(set(every_kwarg) - RUNTIME_KWARGS - set(MAPPING_KWARGS) - SYNTHESIS_KWARGS - SIZE_KWARGS)
    notes = [f"static kwargs not understood (ignored): {', '.join(unknown)}"] if unknown else []
    for note in notes:
        log.warning("%s: %s", path, note)
    details = f" (conditional, {generator.c_dim} classes)" if generator.c_dim else ""
    return TFModel(generator, MODEL + details, tuple(notes))


def _check_finished(variables: Mapping[str, np.ndarray], path: object) -> None:
    """Refuse a snapshot taken while progressive growing was still blending in a resolution."""
    for name in ("lod", "synthesis/lod"):
        if name in variables:
            lod = variable(variables, name, (), path)
            if lod != 0:
                raise CheckpointError(path, f"TensorFlow variable {name} is {float(lod):g}: a snapshot taken "
                                            "while the network was still growing (only lod 0 is supported)")


def _init_kwargs(gs_kwargs: Mapping[str, Any], mapping_kwargs: Mapping[str, Any],
                 synthesis_kwargs: Mapping[str, Any], variables: Mapping[str, np.ndarray],
                 path: object) -> dict[str, Any]:
    """``StyleGAN1Generator`` arguments: sizes from the variables, options from the kwargs."""
    resolution = whole_kwarg(path, "resolution", synthesis_kwargs.get("resolution", 1024), limits.resolution)
    if resolution < 4 or resolution & (resolution - 1):
        raise CheckpointError(path, f"static kwarg resolution must be a power of two >= 4, got {resolution}")
    (w_dim,) = shape_of(variables, "dlatent_avg", 1, path)
    mapping_in, layer_features = shape_of(variables, "mapping/Dense0/weight", 2, path)
    c_dim, z_dim = (shape_of(variables, "mapping/LabelConcat/weight", 2, path)
                    if "mapping/LabelConcat/weight" in variables else (0, mapping_in))
    _, channels, const_height, const_width = shape_of(variables, "synthesis/4x4/Const/const", 4, path)
    if const_height != 4 or const_width < 1:
        raise CheckpointError(path, f"TensorFlow variable synthesis/4x4/Const/const has shape "
                                    f"{(1, channels, const_height, const_width)}; the constant must be 4 pixels high")
    check_stated_sizes(mapping_kwargs, {"latent_size": ("z_dim", z_dim, "mapping/Dense0/weight"),
                                         "label_size": ("c_dim", c_dim, "mapping/LabelConcat/weight"),
                                         "dlatent_size": ("w_dim", w_dim, "dlatent_avg")}, path)
    heights = [2**i for i in range(2, int(np.log2(resolution)) + 1)]
    table = {h: shape_of(variables, f"synthesis/{_scope(h, 'conv1')}/weight", 4, path)[3] for h in heights}
    options = {key: synthesis_kwargs[key] for key in SYNTHESIS_KWARGS if key in synthesis_kwargs}
    try:
        formula = block_channels(heights, SynthesisOptions(**options), None)
    except limits.BAD_CONFIG as error:
        raise CheckpointError(path, f"static kwargs of G_synthesis do not describe a network: "
                                    f"{nvlabs_pkl.first_line(error)}") from None
    mapping = {ours: mapping_kwargs[theirs] for theirs, ours in MAPPING_KWARGS.items() if theirs in mapping_kwargs}
    mapping["layer_features"] = layer_features  # unused by a one-layer mapping
    return dict(
        z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=resolution,
        img_channels=whole_kwarg(path, "num_channels", synthesis_kwargs.get("num_channels", 3), limits.whole),
        img_width=None if const_width == 4 else resolution * const_width // 4,
        channels=None if table == formula else table,
        truncation_cutoff=_truncation_cutoff(gs_kwargs),
        mapping_kwargs=mapping, **options)


def _truncation_cutoff(gs_kwargs: Mapping[str, Any]) -> Any:
    """G_style's ``truncation_cutoff`` (8 by default); None or <= 0 there disables truncation,
    which here is a cutoff of 0 rows."""
    cutoff = gs_kwargs.get("truncation_cutoff", 8)
    return 0 if cutoff is None or (isinstance(cutoff, int) and cutoff <= 0) else cutoff


def _scope(height: int, role: str) -> str:
    """TF scope of one of our synthesis layers (``role`` as in the layer names)."""
    if height == 4:
        return {"const": "4x4/Const", "conv": "4x4/Conv", "conv1": "4x4/Conv"}[role]
    return f"{height}x{height}/" + {"conv0": "Conv0_up", "conv1": "Conv1"}[role]


def _noise_index(height: int, role: str) -> int:
    if height == 4:
        return 0 if role == "const" else 1
    return int(np.log2(height)) * 2 - (4 if role == "conv0" else 3)


LAYER_PARAMETERS = {"weight": ("weight", "conv"), "bias": ("bias", "same"), "const": ("const", "const"),
                    "noise_strength": ("Noise/weight", "same"), "affine.weight": ("StyleMod/weight", "dense"),
                    "affine.bias": ("StyleMod/bias", "same")}


def tf_source(key: str) -> tuple[str, str]:
    """The TF variable and transform of one of our state-dict keys."""
    rules: list[tuple[str, Callable[..., tuple[str, str]]]] = [
        (r"mapping\.w_avg", lambda: ("dlatent_avg", "same")),
        (r"mapping\.embed", lambda: ("mapping/LabelConcat/weight", "dense")),
        (r"mapping\.fc(\d+)\.(weight|bias)",
         lambda i, p: (f"mapping/Dense{i}/{p}", "dense" if p == "weight" else "same")),
        (r"synthesis\.b(\d+)\.(\w+)\.noise_const",
         lambda h, role: (f"synthesis/noise{_noise_index(int(h), role)}", "noise")),
        (r"synthesis\.b(\d+)\.torgb\.(weight|bias)",
         lambda h, p: (f"synthesis/ToRGB_lod0/{p}", "conv" if p == "weight" else "same")),
        (r"synthesis\.b(\d+)\.(\w+)\.(.+)", lambda h, role, p: (
            f"synthesis/{_scope(int(h), role)}/{LAYER_PARAMETERS[p][0]}", LAYER_PARAMETERS[p][1])),
    ]
    for pattern, source in rules:
        match = re.fullmatch(pattern, key)
        if match:
            return source(*match.groups())
    raise KeyError(key)


def _state_dict(generator: StyleGAN1Generator, variables: Mapping[str, np.ndarray],
                path: object) -> dict[str, torch.Tensor]:
    state_dict, used = {}, {"lod", "synthesis/lod"}
    for key, tensor in generator.state_dict().items():
        name, kind = tf_source(key)
        to_torch, tf_shape = TRANSFORMS[kind]
        value = variable(variables, name, tf_shape(tuple(tensor.shape)), path)
        state_dict[key] = torch.from_numpy(np.array(to_torch(value)))  # a contiguous copy
        used.add(name)
    used |= _growing_torgbs(generator, variables, path)
    unused = sorted(set(variables) - used)
    if unused:
        raise CheckpointError(path, f"TensorFlow variable {unused[0]} is not part of the StyleGAN (v1) "
                                    "generator its static kwargs describe"
                                    + (f" (nor are {len(unused) - 1} more)" if len(unused) > 1 else ""))
    return state_dict


def _growing_torgbs(generator: StyleGAN1Generator, variables: Mapping[str, np.ndarray], path: object) -> set[str]:
    """The ToRGB_lod1.. variables of lower resolutions, shape-checked (they do not reach the image)."""
    names = set()
    for layer in generator.layers:
        if not layer.name.endswith(".conv1") and layer.name != "b4.conv":
            continue
        lod = int(np.log2(generator.img_resolution // layer.height))
        scope = f"synthesis/ToRGB_lod{lod}"
        if lod == 0 or f"{scope}/weight" not in variables:
            continue
        variable(variables, f"{scope}/weight", (1, 1, layer.channels, generator.img_channels), path)
        variable(variables, f"{scope}/bias", (generator.img_channels,), path)
        names |= {f"{scope}/weight", f"{scope}/bias"}
    return names
