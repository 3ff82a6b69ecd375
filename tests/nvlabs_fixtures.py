"""Write NVlabs-format checkpoints in test code, without NVlabs' code.

An NVlabs network pickles as ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` with
``meta = {type, version, module_src, class_name, state}``, where ``state`` is the module's
``__dict__`` (``_parameters``, ``_buffers``, ``_modules`` -- themselves persistent objects --
``_init_args``, ``_init_kwargs`` as a ``dnnlib.util.EasyDict``, plain attributes).  Pickle stores
functions and classes by module and name, so while a fixture is *written* we put stand-in modules
named ``torch_utils.persistence`` and ``dnnlib.util`` into ``sys.modules``; tensors pickle exactly as
torch pickles them (``_rebuild_tensor_v2`` / ``_rebuild_parameter`` over ``_load_from_bytes``).
"""

from __future__ import annotations

import collections
import contextlib
import copy
import pickle
import sys
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ganinterface.models.stylegan2 import StyleGAN2Generator

FAKE_MODULE_NAMES = ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util")
HARMLESS_SOURCE = "# the NVlabs module source would be here; loaders must never run it\n"

# NVlabs Generator kwargs as train.py writes them (channels: 4 -> 8, 8 -> 8, 16 -> 4)
TINY_STYLEGAN2_KWARGS: dict[str, Any] = dict(
    z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
    mapping_kwargs=dict(num_layers=2), channel_base=64, channel_max=8, num_fp16_res=0, conv_clamp=256)


def tiny_trained_stylegan2(seed: int = 0, **overrides: Any) -> StyleGAN2Generator:
    """A small StyleGAN2 whose every parameter and buffer is non-trivial (noise, biases, w_avg)."""
    torch.manual_seed(seed)
    generator = StyleGAN2Generator(**{**copy.deepcopy(TINY_STYLEGAN2_KWARGS), **overrides})
    with torch.no_grad():
        for name, tensor in list(generator.named_parameters()) + list(generator.named_buffers()):
            if not name.endswith("resample_filter"):
                tensor.add_(torch.randn_like(tensor) * 0.3)
    return generator.eval()


class _PersistentObject:
    """Pickles like an NVlabs ``persistent_class`` instance."""

    def __init__(self, meta: dict[str, Any]):
        self.meta = meta

    def __reduce__(self):
        return (sys.modules["torch_utils.persistence"]._reconstruct_persistent_obj, (self.meta,))


@contextlib.contextmanager
def fake_nvlabs_modules() -> Iterator[types.SimpleNamespace]:
    """Stand-ins for NVlabs' modules, present in sys.modules only while a fixture is pickled."""
    saved = {name: sys.modules.get(name) for name in FAKE_MODULE_NAMES}
    modules = {name: types.ModuleType(name) for name in FAKE_MODULE_NAMES}

    def _reconstruct_persistent_obj(meta):  # pragma: no cover - only pickled by reference
        raise AssertionError("the fixture writer never unpickles")

    class EasyDict(dict):
        pass

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    modules["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct_persistent_obj
    modules["dnnlib.util"].EasyDict = EasyDict
    modules["torch_utils"].persistence = modules["torch_utils.persistence"]
    modules["dnnlib"].util = modules["dnnlib.util"]
    sys.modules.update(modules)
    try:
        yield types.SimpleNamespace(EasyDict=EasyDict)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _easy(value: Any, easy_dict: type) -> Any:
    if isinstance(value, Mapping):
        return easy_dict({k: _easy(v, easy_dict) for k, v in value.items()})
    return value


def persistent_tree(module: nn.Module, class_name: str, init_kwargs: Mapping[str, Any], easy_dict: type,
                    module_src: str = HARMLESS_SOURCE,
                    extra_state: Mapping[str, Any] | None = None) -> _PersistentObject:
    """Mirror ``module`` (and its children) as NVlabs persistent objects."""

    def mirror(node: nn.Module, name: str, kwargs: Mapping[str, Any], extra: Mapping[str, Any]) -> _PersistentObject:
        state = collections.OrderedDict(
            training=False,
            _parameters=collections.OrderedDict(node._parameters),
            _buffers=collections.OrderedDict(node._buffers),
            _non_persistent_buffers_set=set(node._non_persistent_buffers_set),
            _modules=collections.OrderedDict(
                (child_name, mirror(child, type(child).__name__, {}, {}))
                for child_name, child in node._modules.items()),
            _forward_hooks=collections.OrderedDict(),
            _init_args=(),
            _init_kwargs=_easy(kwargs, easy_dict),
        )
        state.update(extra)
        return _PersistentObject(dict(type="class", version=6, module_src=module_src, class_name=name,
                                      state=state))

    return mirror(module, class_name, init_kwargs, extra_state or {})


def records_from_state(state: Mapping[str, torch.Tensor], class_name: str, init_kwargs: Mapping[str, Any],
                       easy_dict: type, module_src: str = HARMLESS_SOURCE) -> _PersistentObject:
    """NVlabs persistent objects nested as the dotted names of ``state`` say (``b16.conv0.weight``:
    module b16, its module conv0, its parameter weight; ``resample_filter`` is a buffer), written
    from the names alone, without any module of ours."""
    tree: dict[str, Any] = {}
    for key, tensor in state.items():
        *path, leaf = key.split(".")
        node = tree
        for name in path:
            node = node.setdefault(name, {})
        node[leaf] = tensor

    def mirror(node: dict[str, Any], name: str, kwargs: Mapping[str, Any]) -> _PersistentObject:
        tensors = {k: v for k, v in node.items() if isinstance(v, torch.Tensor)}
        state = collections.OrderedDict(
            training=False,
            _parameters=collections.OrderedDict((k, nn.Parameter(v, requires_grad=True))
                                                for k, v in tensors.items() if k != "resample_filter"),
            _buffers=collections.OrderedDict((k, v) for k, v in tensors.items() if k == "resample_filter"),
            _non_persistent_buffers_set=set(),
            _modules=collections.OrderedDict((k, mirror(v, "Module", {})) for k, v in node.items()
                                             if isinstance(v, dict)),
            _init_args=(), _init_kwargs=_easy(kwargs, easy_dict))
        return _PersistentObject(dict(type="class", version=6, module_src=module_src, class_name=name,
                                      state=state))

    return mirror(tree, class_name, init_kwargs)


def nvlabs_snapshot_bytes(generator: nn.Module, init_kwargs: Mapping[str, Any], *, snapshot: bool = True,
                          module_src: str = HARMLESS_SOURCE, class_name: str = "Generator",
                          protocol: int = 4, numpy1_names: bool = False,
                          extra_state: Mapping[str, Any] | None = None,
                          discriminator: tuple[Mapping[str, torch.Tensor], Mapping[str, Any]] | None = None) -> bytes:
    """An NVlabs ``network-snapshot`` pickle (or a bare pickled generator) of ``generator``, with
    ``discriminator`` (its NVlabs-named tensors and constructor arguments) as D when given."""
    with fake_nvlabs_modules() as fake:
        extra = {"w_avg_beta": np.float64(0.995), "img_resolution": np.int64(init_kwargs["img_resolution"]),
                 "block_resolutions": np.array([4, 8, 16]), **(extra_state or {})}
        network = persistent_tree(generator, class_name, init_kwargs, fake.EasyDict, module_src, extra)
        d = None if discriminator is None else records_from_state(
            discriminator[0], "Discriminator", discriminator[1], fake.EasyDict, module_src)
        if snapshot:
            payload: Any = dict(G=network, D=d, G_ema=network, augment_pipe=None,
                                training_set_kwargs=fake.EasyDict(path="data.zip", resolution=16))
        else:
            payload = network
        data = pickle.dumps(payload, protocol=protocol)
    if numpy1_names:
        if protocol > 3:
            raise ValueError("numpy 1 names are rewritten in text GLOBAL opcodes: use protocol <= 3")
        data = data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    return data


def write_nvlabs_snapshot(path: Path, generator: nn.Module | None = None,
                          init_kwargs: Mapping[str, Any] | None = None, **options: Any) -> Path:
    if generator is None:
        generator, init_kwargs = tiny_trained_stylegan2(), TINY_STYLEGAN2_KWARGS
    path.write_bytes(nvlabs_snapshot_bytes(generator, init_kwargs or TINY_STYLEGAN2_KWARGS, **options))
    return path


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    """Identical state dicts: same keys in the same order, bit-equal tensors."""
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


class CallOnUnpickle:
    """Pickles as ``func(*args)``: what a hostile pickle asks the unpickler to call."""

    def __init__(self, func: Any, *args: Any):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def file_writing_code(marker: Path) -> str:
    """Python source that creates ``marker``; payloads run it to prove they ran."""
    return f"open({str(marker)!r}, 'w').write('pwned')"


def writes_file_when_unpickled(marker: Path) -> CallOnUnpickle:
    return CallOnUnpickle(exec, file_writing_code(marker))
