"""TensorFlow-era NVlabs ``.pkl`` files (StyleGAN, StyleGAN2, StyleGAN2-ADA's TF release), read
without TensorFlow and without running anything inside them.

Those files pickle ``dnnlib.tflib.network.Network`` objects (``tfutil.Network`` in the progressive
GAN code), usually as a tuple ``(G, D, Gs)``.  A Network pickles its ``__getstate__`` dict:

* ``version``: 2 (progressive GAN), 3 (StyleGAN), 4 (StyleGAN2), 5 (StyleGAN2-ADA);
* ``name``, ``static_kwargs`` (the build function's keyword arguments), ``build_func_name``;
* ``build_module_src``: the *source code* of the module defining the build function, which tflib
  ``exec``\\ s on load.  We keep it as an inert string and never run it;
* ``variables``: ``[(name, numpy array), ...]`` named relative to the network's scope
  ("dlatent_avg", "Dense0/weight", "4x4/Const/const");
* ``components`` (version 3 on): sub-networks such as ``mapping`` and ``synthesis``;
* version 5 adds input/output names and shapes, which nothing here needs.

The same restricted unpickler as for NVlabs' PyTorch pickles reads them (its allow-list plus the
Network class, which becomes a plain record); the state is then checked and frozen into
``TFNetwork``.  A generator is built from it by the builder registered for its build function.
"""

from __future__ import annotations

import dataclasses
import importlib
import pickle
import reprlib
import types
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

import numpy as np

from ganinterface.models import nvlabs_pkl
from ganinterface.models.base import CheckpointError, GeneratorBase, one_line, size_text

STATE_VERSIONS = (2, 3, 4, 5)
# Gs (the moving average of G) is what NVlabs renders with; G and D are training-time networks.
SNAPSHOT_ORDER = ("G", "D", "Gs")
MAX_COMPONENT_DEPTH = 8


class _PickledNetwork:
    """Stand-in for ``dnnlib.tflib.network.Network``: the unpickler creates it with ``__new__`` and
    hands it the pickled state, which it keeps as it is (checked later, by ``network_from_state``)."""

    state: Mapping[str, Any] = types.MappingProxyType({})  # until the pickle's BUILD sets it

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError("a TensorFlow network whose state is not a dict")
        self.state = state


ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    **nvlabs_pkl.ALLOWED_GLOBALS,
    ("dnnlib.tflib.network", "Network"): _PickledNetwork,
    ("tfutil", "Network"): _PickledNetwork,  # progressive GAN's tflib predecessor
}


@dataclasses.dataclass(frozen=True)
class TFNetwork:
    """One tflib Network as plain data."""

    name: str  # e.g. "Gs", "G_mapping", "G_synthesis"
    build_func_name: str  # e.g. "G_main", "G_style", "G_synthesis_stylegan2"
    static_kwargs: dict[str, Any]
    variables: dict[str, np.ndarray]  # relative to the network's scope: "Dense0/weight"
    components: dict[str, TFNetwork]  # e.g. "mapping", "synthesis"
    version: int
    build_module_src: str = dataclasses.field(repr=False)  # inert: never executed

    def component(self, name: str, path: object) -> TFNetwork:
        if name not in self.components:
            raise CheckpointError(path, f"TensorFlow network {self.name!r} has no {name!r} "
                                        "component")
        return self.components[name]

    def all_variables(self) -> dict[str, np.ndarray]:
        """Own variables and those of the components, the latter prefixed "component/"."""
        found = dict(self.variables)
        for name, component in self.components.items():
            found.update({f"{name}/{key}": value for key, value in component.all_variables().items()})
        return found


@dataclasses.dataclass(frozen=True)
class TFModel:
    """What a builder makes of a TensorFlow generator network."""

    generator: GeneratorBase
    model: str  # e.g. "StyleGAN2 (config-f)", "StyleGAN (v1)"
    notes: tuple[str, ...] = ()
    source_class: str = ""  # filled in by ``load_tf_model``: the network's name and build function

    def description(self) -> str:
        generator = self.generator
        return (f"{self.model}, TensorFlow pickle, {size_text(generator.img_width, generator.img_height)}, "
                f"{generator.num_ws} ws")


TFBuilder = Callable[[TFNetwork, object], TFModel]


def _stylegan2_builder() -> TFBuilder:
    from ganinterface.models.tf_stylegan2 import generator_from_tf

    return generator_from_tf


def _stylegan1_builder() -> TFBuilder:
    module_name = "ganinterface.models.tf_stylegan1"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        return _refuse("StyleGAN (v1) TensorFlow pickles are not supported yet")
    return module.generator_from_tf


def _refuse(problem: str) -> TFBuilder:
    def refuse(network: TFNetwork, path: object) -> TFModel:
        raise CheckpointError(path, problem)

    return refuse


# Build function name of the generator network -> how to get the builder that maps its variables.
TF_GENERATOR_BUILDERS: dict[str, Callable[[], TFBuilder]] = {
    "G_main": _stylegan2_builder,  # StyleGAN2 and StyleGAN2-ADA (TF)
    "G_style": _stylegan1_builder,  # StyleGAN (v1)
}


# ---- reading -------------------------------------------------------------------------------------

def is_tf_pickle(data: Any) -> bool:
    """Whether an unpickled object is a tflib Network or a tuple/list of them."""
    if isinstance(data, _PickledNetwork):
        return True
    return isinstance(data, (tuple, list)) and any(isinstance(item, _PickledNetwork) for item in data)


def read_tf_generator(data: Any, path: object) -> TFNetwork:
    """The generator network of an unpickled TF file: Gs of (G, D, Gs), else the only network."""
    if isinstance(data, _PickledNetwork):
        return network_from_state(data, path)
    networks = list(data)
    if not all(isinstance(item, _PickledNetwork) for item in networks):
        kinds = ", ".join(type(item).__name__ for item in networks)
        raise CheckpointError(path, f"TensorFlow pickle holds a tuple of {kinds}, not of networks")
    if len(networks) == len(SNAPSHOT_ORDER):
        return network_from_state(networks[SNAPSHOT_ORDER.index("Gs")], path)
    if len(networks) == 1:
        return network_from_state(networks[0], path)
    raise CheckpointError(path, f"TensorFlow pickle holds {len(networks)} networks; expected one "
                                "generator or the (G, D, Gs) of a training snapshot")


def network_from_state(pickled: _PickledNetwork, path: object, depth: int = 0) -> TFNetwork:
    """Check a pickled Network's state and freeze it (components recursively)."""
    if depth > MAX_COMPONENT_DEPTH:
        raise CheckpointError(path, "TensorFlow network components are nested implausibly deep "
                                    "(or contain themselves)")
    state = pickled.state
    version = state.get("version")
    if isinstance(version, bool) or version not in STATE_VERSIONS:
        raise CheckpointError(path, f"TensorFlow network state version {one_line(repr(version))[:40]} "
                                    f"is not one this program reads ({STATE_VERSIONS[0]} to "
                                    f"{STATE_VERSIONS[-1]})")
    name = _text(state, "name", path)
    build_func_name = _text(state, "build_func_name", path)
    where = f"TensorFlow network {name!r}"
    static_kwargs = state.get("static_kwargs")
    if not isinstance(static_kwargs, Mapping) or not all(isinstance(k, str) for k in static_kwargs):
        raise CheckpointError(path, f"{where} has no valid static_kwargs")
    source = state.get("build_module_src")
    if not isinstance(source, str):
        raise CheckpointError(path, f"{where} has no build_module_src text")
    components = state.get("components") or {}
    if not isinstance(components, Mapping):
        raise CheckpointError(path, f"{where} has components of type {type(components).__name__}")
    frozen_components = {}
    for key, component in components.items():
        if not isinstance(key, str) or not isinstance(component, _PickledNetwork):
            raise CheckpointError(path, f"{where} has a component {one_line(repr(key))[:40]} that "
                                        "is not a network")
        frozen_components[key] = network_from_state(component, path, depth + 1)
    return TFNetwork(name=name, build_func_name=build_func_name,
                     static_kwargs=nvlabs_pkl._plain(static_kwargs),
                     variables=_variables(state.get("variables"), where, path),
                     components=frozen_components, version=version, build_module_src=source)


def _text(state: Mapping[str, Any], key: str, path: object) -> str:
    value = state.get(key)
    if not isinstance(value, str) or not value:
        raise CheckpointError(path, f"TensorFlow network state without a {key}")
    return value


def _variables(pairs: Any, where: str, path: object) -> dict[str, np.ndarray]:
    if not isinstance(pairs, (list, tuple)):
        raise CheckpointError(path, f"{where} has no list of variables")
    variables: dict[str, np.ndarray] = {}
    for pair in pairs:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and isinstance(pair[0], str)):
            raise CheckpointError(path, f"{where} has a variable entry that is not a (name, value) pair")
        name, value = pair
        if isinstance(value, (np.generic, float, int)) and not isinstance(value, bool):
            value = np.asarray(value)
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
            raise CheckpointError(path, f"{where} variable {name!r} is {kind}, not floating-point numbers")
        if name in variables:
            raise CheckpointError(path, f"{where} has the variable {name!r} twice")
        variables[name] = value
    return variables


def load_tf_model(data: Any, path: object) -> TFModel:
    """Build our generator from an unpickled TF file (see ``is_tf_pickle``)."""
    network = read_tf_generator(data, path)
    builder = TF_GENERATOR_BUILDERS.get(network.build_func_name)
    if builder is None:
        known = ", ".join(sorted(TF_GENERATOR_BUILDERS))
        raise CheckpointError(path, f"TensorFlow network {network.name!r} is built by "
                                    f"{network.build_func_name!r}, which is not a generator this "
                                    f"program knows ({known})")
    model = builder()(network, path)
    return dataclasses.replace(model, source_class=f"tflib Network {network.name!r} built by "
                                                   f"{network.build_func_name}")


def read_tf_pickle(stream: BinaryIO, path: object) -> TFNetwork:
    """The generator network of a TF pickle file as plain data (no generator built)."""
    data = nvlabs_pkl.unpickle_checkpoint(stream, path, ALLOWED_GLOBALS)
    if not is_tf_pickle(data):
        raise CheckpointError(path, f"pickle holds a {type(data).__name__}, not TensorFlow networks")
    return read_tf_generator(data, path)


# ---- checks the builders share -----------------------------------------------------------------

def variable(variables: Mapping[str, np.ndarray], name: str, shape: tuple[int, ...],
             path: object) -> np.ndarray:
    """``variables[name]`` as float32, refused in the file's terms if missing or mis-shaped."""
    if name not in variables:
        raise CheckpointError(path, f"TensorFlow variable {name} is missing")
    value = variables[name]
    if tuple(value.shape) != tuple(shape):
        raise CheckpointError(path, f"TensorFlow variable {name} has shape {tuple(value.shape)}, "
                                    f"the architecture needs {tuple(shape)}")
    return np.asarray(value, dtype=np.float32)


def shape_of(variables: Mapping[str, np.ndarray], name: str, ndim: int, path: object) -> tuple[int, ...]:
    """The shape of a variable that decides a size of the network (must exist, ``ndim`` axes)."""
    if name not in variables:
        raise CheckpointError(path, f"TensorFlow variable {name} is missing")
    shape = tuple(int(n) for n in variables[name].shape)
    if len(shape) != ndim:
        raise CheckpointError(path, f"TensorFlow variable {name} has shape {shape}, expected "
                                    f"{ndim} axes")
    return shape


def whole_kwarg(path: object, name: str, value: Any, check: Callable[[str, Any], int]) -> int:
    """A static kwarg checked as a whole number by ``check`` (a ``limits`` function)."""
    try:
        return check(f"static kwarg {name}", value)
    except ValueError as error:
        raise CheckpointError(path, str(error)) from None


def check_stated_sizes(kwargs: Mapping[str, Any], sizes: Mapping[str, tuple[str, int, str]],
                       path: object) -> None:
    """Sizes come from the variables; a static kwarg stating another is a damaged file.  ``sizes``
    maps a kwarg to (the size's name here, its value, the variable it was read from)."""
    for kwarg, (size, value, variable_name) in sizes.items():
        if kwarg in kwargs and kwargs[kwarg] != value:
            raise CheckpointError(path, f"static kwarg {kwarg}={reprlib.repr(kwargs[kwarg])} does "
                                        f"not match TensorFlow variable {variable_name} ({size} {value})")


# How a TensorFlow variable becomes a PyTorch tensor, and the TF shape a PyTorch shape implies.
Transform = tuple[Callable[[np.ndarray], np.ndarray], Callable[[tuple[int, ...]], tuple[int, ...]]]
TRANSFORMS: dict[str, Transform] = {
    "same": (lambda a: a, lambda s: s),
    "dense": (lambda a: a.T, lambda s: s[::-1]),
    "conv": (lambda a: a.transpose(3, 2, 0, 1), lambda s: (s[2], s[3], s[1], s[0])),
    "conv_up": (lambda a: a[::-1, ::-1].transpose(3, 2, 0, 1), lambda s: (s[2], s[3], s[1], s[0])),
    "mod_bias": (lambda a: a + 1, lambda s: s),
    "const": (lambda a: a[0], lambda s: (1, *s)),
    "noise": (lambda a: a[0, 0], lambda s: (1, 1, *s)),
}
