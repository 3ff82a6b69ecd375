"""NVlabs StyleGAN2-ADA / StyleGAN3 ``.pkl`` snapshots, read without running anything inside them.

NVlabs pickles their networks with ``torch_utils.persistence``: every network object is stored as
``_reconstruct_persistent_obj(meta)`` where ``meta`` holds the *source code* of the module that
defined the class (``module_src``), the class name and the object's ``__dict__`` (parameters,
buffers, sub-modules, ``_init_kwargs``).  NVlabs' own loader ``exec``\\ s that source.  We never do:

* ``RestrictedUnpickler`` resolves only the globals on an explicit allow-list; anything else
  (``os.system``, ``builtins.eval``, ...) stops the load before it can be called.
* ``_reconstruct_persistent_obj`` is replaced by ``PersistentRecord``: a plain record of the class
  name, constructor arguments and state.  ``module_src`` is kept as an inert string.
* Tensor storages are stored as ``torch.storage._load_from_bytes(b)``, whose original unpickles
  ``b`` with no restrictions; ours reads it with ``torch.load(weights_only=True)``.

The generator is then rebuilt from our own implementation: the class is chosen from the record's
class name and its synthesis sub-network, constructed from ``init_kwargs`` and loaded with the
parameters and buffers collected from the records, strictly.
"""

from __future__ import annotations

import collections
import dataclasses
import inspect
import io
import logging
import pickle
import re
import reprlib
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

import numpy as np
import torch

from ganinterface.models import limits
from ganinterface.models.base import CheckpointError, GeneratorBase, size_text

log = logging.getLogger(__name__)

# The snapshot dict written by NVlabs' training loop; G_ema is the generator people render with.
SNAPSHOT_GENERATOR_KEYS = ("G_ema", "G")
SNAPSHOT_DISCRIMINATOR_KEY = "D"
MAX_MODULE_DEPTH = 64


class ForbiddenGlobal(pickle.UnpicklingError):
    """The pickle asked for a global that is not on the allow-list: refused for safety, which is
    not the same as a damaged file."""

    def __init__(self, qualified_name: str, where: str = "the pickle"):
        self.qualified_name = qualified_name
        super().__init__(
            f"refused for safety: {where} asks to run {qualified_name}, which a checkpoint never "
            f"needs (it is not on the allow-list of what checkpoints contain); nothing from the "
            f"file was run")


@dataclasses.dataclass(eq=False)
class PersistentRecord:
    """What NVlabs' ``_reconstruct_persistent_obj`` would have built, as inert data."""

    class_name: str
    state: dict[str, Any]
    module_src: str = dataclasses.field(repr=False)
    persistence_version: Any = None

    def __setstate__(self, state: Any) -> None:  # a pickle must not be able to BUILD into us
        raise pickle.UnpicklingError("unexpected state applied to a persistent object")

    @property
    def init_args(self) -> tuple:
        return tuple(_plain(self.state.get("_init_args", ())))

    @property
    def init_kwargs(self) -> dict[str, Any]:
        return _plain(self.state.get("_init_kwargs") or {})

    @property
    def children(self) -> dict[str, Any]:
        return dict(self.state.get("_modules") or {})

    @property
    def source_module(self) -> str:
        """Best guess of the NVlabs module that defined the class, from its (unexecuted) source."""
        if "class SynthesisInput" in self.module_src:
            return "training.networks_stylegan3"
        if "fused_modconv_default" in self.module_src:
            return "training.networks_stylegan2"
        if "class SynthesisBlock" in self.module_src:
            return "training.networks"
        return "unknown module"

    @property
    def qualified_name(self) -> str:
        return f"{self.source_module}.{self.class_name}"


def _record_persistent_object(meta: Any) -> PersistentRecord:
    """Stand-in for ``torch_utils.persistence._reconstruct_persistent_obj``: record, never exec."""
    if not isinstance(meta, Mapping):
        raise pickle.UnpicklingError("persistent object metadata is not a dict")
    if meta.get("type", "class") != "class":
        raise pickle.UnpicklingError(f"persistent object of unknown type {meta.get('type')!r}")
    class_name = meta.get("class_name")
    state = meta.get("state")
    if not isinstance(class_name, str) or not isinstance(state, Mapping):
        raise pickle.UnpicklingError("persistent object without a class name or state")
    module_src = meta.get("module_src")
    return PersistentRecord(class_name=class_name, state=dict(state),
                            module_src=module_src if isinstance(module_src, str) else "",
                            persistence_version=meta.get("version"))


class _EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a dict that accepts an empty pickled ``__dict__``."""

    def __setstate__(self, state: Any) -> None:
        if state:
            raise pickle.UnpicklingError("unexpected attributes on an EasyDict")


def _load_storage_from_bytes(data: Any) -> Any:
    """Stand-in for ``torch.storage._load_from_bytes``: the blob is itself a pickle, so restrict it."""
    if not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError("tensor storage blob is not bytes")
    where = "a tensor storage inside the pickle"
    try:
        storage = torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise (forbidden_global(error, where)
               or pickle.UnpicklingError(f"{where} is corrupt ({weights_only_reason(error)})")) from None
    except Exception as error:  # torch reports damage with many exception types
        raise pickle.UnpicklingError(f"{where} is corrupt ({first_line(error)})") from None
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise pickle.UnpicklingError(f"tensor storage blob holds a {type(storage).__name__}")
    return storage


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any, *_ignored: Any) -> torch.Tensor:
    """Stand-in for ``torch._utils._rebuild_tensor_v2`` that ignores backward hooks and metadata."""
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise pickle.UnpicklingError(f"tensor built from a {type(storage).__name__}, not a storage")
    if not (_is_int(storage_offset) and _is_int_tuple(size) and _is_int_tuple(stride)):
        raise pickle.UnpicklingError("tensor with a malformed size or stride")
    try:
        return torch._utils._rebuild_tensor(storage, storage_offset, tuple(size), tuple(stride))
    except (RuntimeError, TypeError, OverflowError) as error:
        raise pickle.UnpicklingError(f"tensor does not fit its storage ({first_line(error)})") from None


def _rebuild_parameter(data: Any, requires_grad: Any = False, *_ignored: Any) -> torch.Tensor:
    """Stand-in for ``torch._utils._rebuild_parameter[_with_state]``: we only need the values."""
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError("parameter built from something that is not a tensor")
    return data


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise pickle.UnpicklingError("numpy scalar of an unsupported kind")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _numpy_array(cls: Any, shape: Any, dtype: Any) -> np.ndarray:
    """numpy pickles an array as an empty one (shape (0,)) that its state then fills; any other
    shape here would allocate memory before the state's size is checked against its data."""
    if cls is not np.ndarray:
        raise pickle.UnpicklingError("numpy array of an unsupported class")
    if tuple(shape) != (0,):
        raise pickle.UnpicklingError("numpy array reconstructed with a shape numpy never writes")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _numpy_dtype(spec: Any, align: Any = False, copy: Any = False) -> np.dtype:
    dtype = np.dtype(spec, align=bool(align), copy=bool(copy))
    if dtype.hasobject:
        raise pickle.UnpicklingError("numpy arrays of Python objects are not allowed")
    return dtype


def _latin1_bytes(text: Any, encoding: Any = "latin1") -> bytes:
    """Protocol-2 pickles store bytes as ``_codecs.encode(text, "latin1")``."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("unexpected _codecs.encode call")
    return text.encode("latin1")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("torch", "Size"): torch.Size,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _record_persistent_object,
        ("dnnlib.util", "EasyDict"): _EasyDict,
        ("dnnlib", "EasyDict"): _EasyDict,
        ("numpy", "dtype"): _numpy_dtype,
        ("numpy", "ndarray"): np.ndarray,
        ("_codecs", "encode"): _latin1_bytes,
    }
    for numpy_core in ("numpy.core.multiarray", "numpy._core.multiarray"):  # numpy 1 and numpy 2
        allowed[(numpy_core, "scalar")] = _numpy_scalar
        allowed[(numpy_core, "_reconstruct")] = _numpy_array
    return allowed


ALLOWED_GLOBALS = _allowed_globals()
PYTHON2_MODULE_NAMES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


# The pure-Python unpickler: its memo is a dict, where the C one allocates an array as long as the
# largest memo index a file names (one LONG_BINPUT 251658817 in a damaged file: 2 GB, 8 s).
# Checkpoints hold few opcodes (the weights are a few large byte strings), so speed is the same.
class RestrictedUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """Resolves only the allowed globals; persistent ids (torch.save's storages) are refused."""

    def __init__(self, stream: BinaryIO, allowed: Mapping[tuple[str, str], Any] = ALLOWED_GLOBALS):
        super().__init__(stream)
        self.allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        module = PYTHON2_MODULE_NAMES.get(module, module)  # protocol-2 pickles name Python 2 modules
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise ForbiddenGlobal(f"{module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("the pickle refers to external (persistent) objects")


def read_pickle(stream: BinaryIO, allowed: Mapping[tuple[str, str], Any] = ALLOWED_GLOBALS) -> Any:
    """Unpickle with the allow-list; raises pickle.UnpicklingError (or EOFError) on refusal."""
    return RestrictedUnpickler(stream, allowed).load()


class _WholeReads(io.BytesIO):
    """A read of n bytes gets n bytes or fails: unlike C's, the pure-Python unpickler takes what a
    truncated file gives and carries on with it."""

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        if size is not None and 0 < size and len(data) < size:
            raise pickle.UnpicklingError("pickle data was truncated")
        return data

    def readinto(self, buffer: Any) -> int:
        count = super().readinto(buffer)
        if count < memoryview(buffer).nbytes:
            raise pickle.UnpicklingError("pickle data was truncated")
        return count


def unpickle_checkpoint(stream: BinaryIO, path: object,
                        allowed: Mapping[tuple[str, str], Any] = ALLOWED_GLOBALS) -> Any:
    """``read_pickle`` of a whole checkpoint file, every refusal a one-line CheckpointError."""
    try:
        # from memory: a length in the pickle (a FRAME, a BINBYTES8) then reads no more than there is
        return read_pickle(_WholeReads(stream.read()), allowed)
    except ForbiddenGlobal as error:
        raise CheckpointError(path, str(error)) from None
    except (pickle.UnpicklingError, EOFError) as error:
        raise CheckpointError(path, f"truncated or corrupt pickle ({first_line(error)})") from None
    except (ValueError, TypeError, IndexError, KeyError, AttributeError, MemoryError,
            RecursionError, OverflowError) as error:
        raise CheckpointError(path, f"corrupt pickle ({type(error).__name__}: "
                                    f"{first_line(error)})") from None


# ---- from records to one of our generators ---------------------------------------------------------

def _stylegan2_class() -> Callable[..., GeneratorBase]:
    from ganinterface.models.stylegan2 import StyleGAN2Generator

    return StyleGAN2Generator


def _stylegan3_class() -> Callable[..., GeneratorBase]:
    from ganinterface.models.stylegan3 import StyleGAN3Generator

    return StyleGAN3Generator


def find_generator_record(data: Any, path: object) -> PersistentRecord:
    """The generator in an unpickled NVlabs file: a snapshot's G_ema (else G) or a bare generator."""
    if isinstance(data, PersistentRecord):
        return data
    if isinstance(data, Mapping):
        for key in SNAPSHOT_GENERATOR_KEYS:
            if isinstance(data.get(key), PersistentRecord):
                return data[key]
        keys = ", ".join(sorted(str(k) for k in data)) or "nothing"
        raise CheckpointError(path, f"pickle holds a dict of {keys} but no G_ema or G network")
    raise CheckpointError(path, f"pickle holds a {type(data).__name__}, not an NVlabs network")


def identify_architecture(record: PersistentRecord, path: object) -> str:
    """"stylegan2" or "stylegan3", from class names and the synthesis network's sub-modules."""
    synthesis = record.children.get("synthesis")
    if record.class_name != "Generator" or not isinstance(synthesis, PersistentRecord):
        raise CheckpointError(path, f"unsupported network class {record.qualified_name!r} "
                                    "(expected an NVlabs StyleGAN2/StyleGAN3 Generator)")
    if synthesis.class_name != "SynthesisNetwork":
        raise CheckpointError(path, f"unsupported synthesis network class {synthesis.class_name!r}")
    names = set(synthesis.children)
    if "input" in names:
        return "stylegan3"
    if "b4" in names:
        return "stylegan2"
    raise CheckpointError(path, "synthesis network is neither StyleGAN2 (b4, b8, ...) nor "
                                "StyleGAN3 (input, L0_..., ...)")


def collect_state_dict(record: PersistentRecord, path: object) -> dict[str, torch.Tensor]:
    """Parameters and persistent buffers of a record tree, keyed like ``nn.Module.state_dict()``."""
    tensors: dict[str, torch.Tensor] = {}

    def visit(node: PersistentRecord, prefix: str, depth: int) -> None:
        if depth > MAX_MODULE_DEPTH:
            raise CheckpointError(path, "network nesting is implausibly deep")
        state = node.state
        non_persistent = state.get("_non_persistent_buffers_set") or set()
        entries = list((state.get("_parameters") or {}).items())
        entries += [(n, b) for n, b in (state.get("_buffers") or {}).items() if n not in non_persistent]
        for name, value in entries:
            if value is None:
                continue
            if not isinstance(value, torch.Tensor):
                raise CheckpointError(path, f"{prefix}{name} is a {type(value).__name__}, not a tensor")
            tensors[prefix + name] = value
        for name, child in node.children.items():
            if child is None:
                continue
            if not isinstance(child, PersistentRecord):
                raise CheckpointError(path, f"sub-module {prefix}{name} is a {type(child).__name__}")
            visit(child, f"{prefix}{name}.", depth + 1)

    visit(record, "", 0)
    return tensors


def build_generator(architecture: str, init_args: tuple, init_kwargs: Mapping[str, Any],
                    state_dict: Mapping[str, torch.Tensor], path: object) -> GeneratorBase:
    """Construct our generator from NVlabs init arguments and load its weights strictly."""
    classes = {"stylegan2": _stylegan2_class, "stylegan3": _stylegan3_class}
    if architecture not in classes:
        raise CheckpointError(path, f"unknown architecture {architecture!r}")
    generator_class = classes[architecture]()
    try:
        generator = generator_class(*init_args, **init_kwargs)
    except limits.BAD_CONFIG as error:
        raise CheckpointError(path, f"cannot build a {architecture} generator from the stored "
                                    f"init_kwargs: {first_line(error)}") from None
    load_state_dict_checked(generator, state_dict, path)
    return generator.eval().requires_grad_(False)


def load_state_dict_checked(module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor],
                            path: object) -> None:
    """``load_state_dict(strict=True)`` with a one-line error naming the first offending key."""
    expected = module.state_dict()
    missing = [key for key in expected if key not in state_dict]
    if missing:
        raise CheckpointError(path, f"weights missing for {missing[0]}"
                                    + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    unexpected = [key for key in state_dict if key not in expected]
    if unexpected:
        raise CheckpointError(path, f"unexpected weights {unexpected[0]}"
                                    + (f" and {len(unexpected) - 1} more" if len(unexpected) > 1 else ""))
    for key, tensor in expected.items():
        if tuple(state_dict[key].shape) != tuple(tensor.shape):
            raise CheckpointError(path, f"{key} has shape {tuple(state_dict[key].shape)}, the "
                                        f"architecture needs {tuple(tensor.shape)}")
    module.load_state_dict({k: v.to(torch.float32) if v.is_floating_point() else v
                            for k, v in state_dict.items()}, strict=True)


@dataclasses.dataclass
class NVlabsCheckpoint:
    generator: GeneratorBase
    source_class: str  # e.g. "training.networks_stylegan2.Generator"
    notes: list[str] = dataclasses.field(default_factory=list)  # e.g. fork arguments applied or ignored


def checkpoint_from_data(data: Any, path: object) -> NVlabsCheckpoint:
    """Our generator from an unpickled NVlabs PyTorch file (a snapshot dict or a bare network)."""
    try:
        return generator_from_record(find_generator_record(data, path), path)
    except RecursionError:  # nesting the (iterative) unpickler accepted but our walk cannot follow
        raise CheckpointError(path, "network description is implausibly deeply nested") from None


def generator_from_record(record: PersistentRecord, path: object) -> NVlabsCheckpoint:
    architecture = identify_architecture(record, path)
    state_dict = collect_state_dict(record, path)
    init_kwargs, notes = understood_arguments(architecture, record.init_kwargs, path)
    if architecture == "stylegan2":
        init_kwargs, notes = _non_square_start(init_kwargs, state_dict, notes)
    generator = build_generator(architecture, record.init_args, init_kwargs, state_dict, path)
    log.info("loaded %s from %s (embedded source not executed)", record.qualified_name, path)
    return NVlabsCheckpoint(generator=generator, source_class=record.qualified_name, notes=notes)


def discriminator_from_data(data: Any, path: object) -> torch.nn.Module | None:
    """The discriminator of an unpickled NVlabs snapshot (its ``D``), built like the generator:
    from its constructor arguments, loaded strictly; None when the file carries none."""
    from ganinterface.models.stylegan2_discriminator import discriminator_from_kwargs

    record = data.get(SNAPSHOT_DISCRIMINATOR_KEY) if isinstance(data, Mapping) else None
    if not isinstance(record, PersistentRecord):
        return None
    if record.class_name != "Discriminator":
        raise CheckpointError(path, f"unsupported discriminator class {record.qualified_name!r}")
    try:
        discriminator = discriminator_from_kwargs(record.init_kwargs, record.source_module, path)
        load_state_dict_checked(discriminator, collect_state_dict(record, path), path)
    except RecursionError:
        raise CheckpointError(path, "discriminator description is implausibly deeply nested") from None
    return discriminator.eval().requires_grad_(False)


# ---- constructor arguments of forks -------------------------------------------------------------

# Fork arguments our generators apply, and what they do (only noted when they change the output).
FORK_ARGUMENTS = {"resize": "the final image resized to {value} x {value} px, as DragGAN's code does"}


def _accepted_arguments(architecture: str) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """Constructor arguments our generator understands: top level, in ``synthesis_kwargs``, in
    ``mapping_kwargs``."""
    sizes = {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs"}
    if architecture == "stylegan2":
        from ganinterface.models import stylegan2
        from ganinterface.models.stylegan2_layers import MappingNetwork

        synthesis = {f.name for f in dataclasses.fields(stylegan2.SynthesisOptions)}
        synthesis |= stylegan2.IGNORED_SYNTHESIS_KWARGS
        mapping = set(inspect.signature(MappingNetwork).parameters) - {"z_dim", "c_dim", "w_dim", "num_ws"}
        top = sizes | synthesis | {"synthesis_kwargs", "img_width", "channels"}
        return frozenset(top), frozenset(synthesis), frozenset(mapping)
    from ganinterface.models import stylegan3

    synthesis = {f.name for f in dataclasses.fields(stylegan3.SynthesisConfig)}
    mapping = {f.name for f in dataclasses.fields(stylegan3.MappingConfig)}
    return frozenset(sizes | synthesis), frozenset(), frozenset(mapping)


def understood_arguments(architecture: str, init_kwargs: Mapping[str, Any],
                         path: object) -> tuple[dict[str, Any], list[str]]:
    """``init_kwargs`` without the arguments our generator does not understand (forks add their
    own), and notes naming those dropped (also logged as one warning) and the fork ones applied."""
    top, synthesis, mapping = _accepted_arguments(architecture)
    kept, dropped = _split(init_kwargs, top, "")
    for group, accepted in (("synthesis_kwargs", synthesis), ("mapping_kwargs", mapping)):
        if isinstance(kept.get(group), Mapping):
            kept[group], more = _split(kept[group], accepted, f"{group}.")
            dropped += more
    notes = []
    for name, effect in FORK_ARGUMENTS.items():
        for value in (kept.get(name), (kept.get("synthesis_kwargs") or {}).get(name)):
            if value is not None:
                notes.append(f"fork argument {name}={value!r} applied: {effect.format(value=value)}")
    if dropped:
        notes.append(f"constructor arguments not understood, ignored: {', '.join(dropped)}")
        log.warning("%s: %s", path, notes[-1])
    return kept, notes


def _non_square_start(init_kwargs: dict[str, Any], state_dict: Mapping[str, torch.Tensor],
                      notes: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Forks name a non-square constant input in their own ways; its shape says what it is: a
    4 x w0 start makes images of width height * w0 / 4 (``img_width``)."""
    const = state_dict.get("synthesis.b4.const")
    resolution = init_kwargs.get("img_resolution")
    if ("img_width" in init_kwargs or not isinstance(const, torch.Tensor) or const.ndim != 3
            or const.shape[1] != 4 or const.shape[2] == 4 or not _is_int(resolution)):
        return init_kwargs, notes
    width = resolution * const.shape[2] // 4
    note = (f"non-square start read from the weights: a 4 x {const.shape[2]} constant input, so "
            f"images of {size_text(width, resolution)}")
    return {**init_kwargs, "img_width": width}, [*notes, note]


def _split(kwargs: Mapping[str, Any], accepted: frozenset[str], prefix: str) -> tuple[dict[str, Any], list[str]]:
    kept = {k: v for k, v in kwargs.items() if k in accepted}
    dropped = [f"{prefix}{k}={reprlib.repr(v)}" for k, v in kwargs.items() if k not in accepted]
    return kept, dropped


# ---- small helpers -------------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    """EasyDicts, OrderedDicts and numpy scalars from a pickle -> plain Python values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_int_tuple(value: Any) -> bool:
    return isinstance(value, (tuple, list, torch.Size)) and all(_is_int(v) for v in value)


def forbidden_global(error: pickle.UnpicklingError, where: str) -> ForbiddenGlobal | None:
    """torch's weights-only refusal of a callable (a long multi-line advice text) as ours; None
    when the refusal is about something else, such as an unknown opcode in a damaged file."""
    match = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) (\S+)", str(error))
    if match is None:
        return None
    name = match.group(1)
    return ForbiddenGlobal(name if "." in name else f"builtins.{name}", where)


def weights_only_reason(error: pickle.UnpicklingError) -> str:
    """What torch's weights-only loader did not accept, in a few words (not its advice)."""
    match = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", str(error))
    return match.group(1).strip() if match else first_line(error)


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, for one-line CheckpointErrors."""
    text = (str(error).strip() or type(error).__name__).splitlines()[0]
    if len(text) > 160 and ". " in text:  # torch appends paragraphs of advice
        text = text.split(". ", 1)[0]
    return text
