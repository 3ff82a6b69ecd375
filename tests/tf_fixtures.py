"""Write TensorFlow-era NVlabs pickles in test code, without TensorFlow or NVlabs' code.

A ``dnnlib.tflib.network.Network`` pickles as the class (by module and name) plus the dict its
``__getstate__`` returns: version, name, static_kwargs, components, build_module_src,
build_func_name and variables as ``[(name, numpy array), ...]`` (version 5 adds input/output names
and shapes).  While a fixture is written, a stand-in module named ``dnnlib.tflib.network`` sits in
``sys.modules`` so pickle records that name; the file then reads exactly like one of NVlabs'.

``stylegan2_tf_networks`` makes the (G, D, Gs) of NVlabs' TF StyleGAN2 (``stylegan2`` repository,
state version 4) or StyleGAN2-ADA (``stylegan2-ada``, version 5) with random weights under the
original variable names and shapes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import pickle
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

FAKE_MODULE_NAMES = ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network")
HARMLESS_SOURCE = "# the build module's source would be here; loaders must never run it\n"


class TFNetworkFixture:
    """Holds a Network's state; pickled under the name ``dnnlib.tflib.network.Network``."""

    def __init__(self, state: dict[str, Any]):
        self.state = state

    def __getstate__(self) -> dict[str, Any]:
        return self.state


def tf_network(name: str, build_func_name: str, static_kwargs: dict[str, Any],
               variables: dict[str, np.ndarray], components: dict[str, TFNetworkFixture] | None = None,
               version: int = 4, build_module_src: str = HARMLESS_SOURCE) -> TFNetworkFixture:
    state = dict(version=version, name=name, static_kwargs=dict(static_kwargs),
                 components=dict(components or {}), build_module_src=build_module_src,
                 build_func_name=build_func_name, variables=list(variables.items()))
    if version == 2:  # progressive GAN's tfutil wrote no components
        del state["components"]
    if version >= 5:
        state.update(input_shapes=[[None, 1]], output_shapes=[[None, 1]], input_names=["in"],
                     output_names=["out"])
    return TFNetworkFixture(state)


@contextlib.contextmanager
def fake_tflib_module() -> Iterator[None]:
    saved = {name: sys.modules.get(name) for name in FAKE_MODULE_NAMES}
    modules = {name: types.ModuleType(name) for name in FAKE_MODULE_NAMES}
    original = (TFNetworkFixture.__module__, TFNetworkFixture.__qualname__)
    TFNetworkFixture.__module__, TFNetworkFixture.__qualname__ = "dnnlib.tflib.network", "Network"
    modules["dnnlib.tflib.network"].Network = TFNetworkFixture
    sys.modules.update(modules)
    try:
        yield
    finally:
        TFNetworkFixture.__module__, TFNetworkFixture.__qualname__ = original
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def tf_pickle_bytes(data: Any, protocol: int = 3) -> bytes:
    """``data`` (networks, tuples of them) pickled as TensorFlow-era NVlabs code did (protocol 3)."""
    with fake_tflib_module():
        return pickle.dumps(data, protocol=protocol)


def write_tf_pickle(path: Path, data: Any, protocol: int = 3) -> Path:
    path.write_bytes(tf_pickle_bytes(data, protocol))
    return path


# ---- StyleGAN2 (TensorFlow) ----------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TFStyleGAN2Spec:
    """The static kwargs of a TF StyleGAN2 generator, small by default."""

    flavour: str = "stylegan2"  # "stylegan2" (state version 4) or "ada" (StyleGAN2-ADA TF, version 5)
    resolution: int = 32
    num_channels: int = 3
    latent_size: int = 12
    dlatent_size: int = 10
    label_size: int = 0
    label_fmaps: int | None = None
    mapping_layers: int = 2
    mapping_fmaps: int | None = None
    fmap_base: int = 64  # channels of the block at resolution r: min(2 * fmap_base // r, fmap_max)
    fmap_max: int = 16
    architecture: str = "skip"
    conv_clamp: float | None = None  # ADA only
    use_noise: bool = True  # ADA only: False writes no noise images or strengths
    resample_kernel: tuple[int, ...] | None = (1, 3, 3, 1)  # None: TensorFlow's box filter
    extra_kwargs: tuple[tuple[str, Any], ...] = ()

    @property
    def resolution_log2(self) -> int:
        return int(np.log2(self.resolution))

    def nf(self, stage: int) -> int:
        return int(np.clip(int(self.fmap_base / 2.0**stage), 1, self.fmap_max))

    def static_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(
            num_channels=self.num_channels, resolution=self.resolution, label_size=self.label_size,
            latent_size=self.latent_size, dlatent_size=self.dlatent_size,
            mapping_layers=self.mapping_layers, fmap_base=self.fmap_base, fmap_max=self.fmap_max,
            architecture=self.architecture, truncation_psi=0.5)
        if self.mapping_fmaps is not None:
            kwargs["mapping_fmaps"] = self.mapping_fmaps
        if self.flavour == "ada":
            kwargs.update(conv_clamp=self.conv_clamp, num_fp16_res=0, label_fmaps=self.label_fmaps,
                          use_noise=self.use_noise)
        if self.resample_kernel != (1, 3, 3, 1):
            kwargs["resample_kernel"] = None if self.resample_kernel is None else list(self.resample_kernel)
        kwargs.update(dict(self.extra_kwargs))
        return kwargs


def normal(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def stylegan2_mapping_variables(spec: TFStyleGAN2Spec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    variables: dict[str, np.ndarray] = {}
    width = spec.latent_size
    if spec.label_size:
        embed = spec.label_fmaps if spec.label_fmaps is not None else spec.latent_size
        variables["LabelEmbed/weight"] = normal(rng, spec.label_size, embed)
        variables["LabelEmbed/bias"] = normal(rng, embed, scale=0.3)
        width += embed
    hidden = spec.mapping_fmaps if spec.mapping_fmaps is not None else (
        512 if spec.flavour == "stylegan2" else spec.dlatent_size)  # each repository's default
    for i in range(spec.mapping_layers):
        out = spec.dlatent_size if i == spec.mapping_layers - 1 else hidden
        variables[f"Dense{i}/weight"] = normal(rng, width, out, scale=10.0)  # stored / lrmul
        variables[f"Dense{i}/bias"] = normal(rng, out, scale=10.0)
        width = out
    return variables


def _modulated(rng: np.random.Generator, spec: TFStyleGAN2Spec, kernel: int, fmaps_in: int,
               fmaps_out: int, noise: bool = True) -> dict[str, np.ndarray]:
    layer = {"weight": normal(rng, kernel, kernel, fmaps_in, fmaps_out),
             "mod_weight": normal(rng, spec.dlatent_size, fmaps_in),
             "mod_bias": normal(rng, fmaps_in, scale=0.3),
             "bias": normal(rng, fmaps_out, scale=0.3)}
    if noise and spec.use_noise:
        layer["noise_strength"] = normal(rng, scale=0.5)
    return layer


def stylegan2_synthesis_variables(spec: TFStyleGAN2Spec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    variables: dict[str, np.ndarray] = {}
    num_layers = spec.resolution_log2 * 2 - 2
    for layer_idx in range(num_layers - 1 if spec.use_noise else 0):
        side = 2 ** ((layer_idx + 5) // 2)
        variables[f"noise{layer_idx}"] = normal(rng, 1, 1, side, side)

    def add(scope: str, layer: dict[str, np.ndarray]) -> None:
        variables.update({f"{scope}/{key}": value for key, value in layer.items()})

    variables["4x4/Const/const"] = normal(rng, 1, spec.nf(1), 4, 4)
    add("4x4/Conv", _modulated(rng, spec, 3, spec.nf(1), spec.nf(1)))
    if spec.architecture == "skip":
        add("4x4/ToRGB", _modulated(rng, spec, 1, spec.nf(1), spec.num_channels, noise=False))
    for res in range(3, spec.resolution_log2 + 1):
        scope = f"{2**res}x{2**res}"
        add(f"{scope}/Conv0_up", _modulated(rng, spec, 3, spec.nf(res - 2), spec.nf(res - 1)))
        add(f"{scope}/Conv1", _modulated(rng, spec, 3, spec.nf(res - 1), spec.nf(res - 1)))
        if spec.architecture == "resnet":
            variables[f"{scope}/Skip/weight"] = normal(rng, 1, 1, spec.nf(res - 2), spec.nf(res - 1))
        if spec.architecture == "skip" or res == spec.resolution_log2:
            add(f"{scope}/ToRGB", _modulated(rng, spec, 1, spec.nf(res - 1), spec.num_channels, noise=False))
    return variables


def stylegan2_generator(spec: TFStyleGAN2Spec, seed: int, name: str = "Gs") -> TFNetworkFixture:
    """One TF StyleGAN2 generator network (G_main with mapping and synthesis components)."""
    rng = np.random.default_rng(seed)
    version = 5 if spec.flavour == "ada" else 4
    synthesis_func = "G_synthesis" if spec.flavour == "ada" else "G_synthesis_stylegan2"
    kwargs = spec.static_kwargs()
    num_ws = spec.resolution_log2 * 2 - 2
    mapping = tf_network("G_mapping", "G_mapping", {**kwargs, "dlatent_broadcast": num_ws},
                         stylegan2_mapping_variables(spec, rng), version=version)
    synthesis = tf_network("G_synthesis", synthesis_func, kwargs,
                           stylegan2_synthesis_variables(spec, rng), version=version)
    return tf_network(name, "G_main", kwargs, {"dlatent_avg": normal(rng, spec.dlatent_size)},
                      components=dict(mapping=mapping, synthesis=synthesis), version=version)


def stylegan2_tf_networks(spec: TFStyleGAN2Spec, seed: int = 0) -> tuple[TFNetworkFixture, ...]:
    """(G, D, Gs) of a training snapshot; G and Gs hold different weights, as after training."""
    version = 5 if spec.flavour == "ada" else 4
    discriminator = tf_network("D", "D_stylegan2", {"resolution": spec.resolution},
                               {"Output/weight": np.ones((4, 1), np.float32)}, version=version)
    return (stylegan2_generator(spec, seed + 1, "G"), discriminator, stylegan2_generator(spec, seed, "Gs"))


def write_stylegan2_tf(path: Path, spec: TFStyleGAN2Spec = TFStyleGAN2Spec(), seed: int = 0) -> Path:
    return write_tf_pickle(path, stylegan2_tf_networks(spec, seed))
