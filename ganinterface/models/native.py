"""ganinterface's own checkpoint format: safetensors weights plus a JSON description.

``X.safetensors`` holds the state dict under NVlabs' key names; its ``__metadata__["ganinterface"]``
embeds the same JSON document as the sidecar ``X.json``::

    {"format": "ganinterface.generator", "version": 1, "architecture": "stylegan2",
     "config": {...constructor kwargs...}, "resolution": [H, W], "z_dim": ..., "w_dim": ...,
     "c_dim": ..., "provenance": ..., "model_card": ...}

The sidecar is what a person reads and edits; when it is missing the embedded copy is used, so a
lone ``.safetensors`` file still loads.  Nothing in either file is executed: the architecture name
picks a class from a fixed table and the config only supplies constructor arguments.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes

from ganinterface.atomic import atomic_write_bytes
from ganinterface.models import limits
from ganinterface.models.base import CheckpointError, GeneratorBase

FORMAT = "ganinterface.generator"
VERSION = 1
METADATA_KEY = "ganinterface"
# architecture -> (module, class); imported only when needed.
GENERATOR_CLASSES = {
    "stylegan1": ("ganinterface.models.stylegan1", "StyleGAN1Generator"),
    "stylegan2": ("ganinterface.models.stylegan2", "StyleGAN2Generator"),
    "stylegan3-t": ("ganinterface.models.stylegan3", "StyleGAN3Generator"),
    "stylegan3-r": ("ganinterface.models.stylegan3", "StyleGAN3Generator"),
}


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """The JSON description that belongs to a weights file: ``X.safetensors`` -> ``X.json``."""
    return Path(path).with_suffix(".json")


# ---- saving ------------------------------------------------------------------------------------------
def describe(generator: GeneratorBase, provenance: Any = None, model_card: Any = None) -> dict[str, Any]:
    """The JSON document stored beside (and inside) the weights."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "architecture": generator.architecture,
        "config": generator.config(),
        "resolution": [int(generator.img_height), int(generator.img_width)],
        "z_dim": int(generator.z_dim),
        "w_dim": int(generator.w_dim),
        "c_dim": int(generator.c_dim),
        "provenance": provenance,
        "model_card": model_card,
    }


def _weights(generator: GeneratorBase) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", memory_format=torch.contiguous_format).contiguous()
            for k, v in generator.state_dict().items()}


def save_native(generator: GeneratorBase, path: str | os.PathLike[str], *, provenance: Any = None,
                model_card: Any = None) -> None:
    """Write ``path`` (.safetensors) and its sidecar ``.json``, each atomically.

    ``provenance`` and ``model_card`` must be JSON-serialisable (checked before anything is written).
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        raise ValueError(f"{path}: the weights file needs its own name; use a .safetensors path")
    if generator.architecture not in GENERATOR_CLASSES:
        raise ValueError(f"cannot save architecture {generator.architecture!r} in the native format")
    try:
        document = json.dumps(describe(generator, provenance, model_card), indent=2, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: provenance, model card and config must be plain JSON data ({error})") from None
    # Two files cannot be replaced in one step.  Without the old sidecar, the weights file is read
    # with its embedded description, so a process killed in between leaves a consistent model
    # (old or new), never new weights described by the old sidecar.
    sidecar_path(path).unlink(missing_ok=True)
    atomic_write_bytes(path, safetensors_bytes(_weights(generator), metadata={METADATA_KEY: document}))
    atomic_write_bytes(sidecar_path(path), (document + "\n").encode("utf-8"))


# ---- hashing -----------------------------------------------------------------------------------------
def generator_hash(generator: GeneratorBase) -> str:
    """sha256 (hex) of every named tensor: name, dtype, shape and bytes, in sorted key order."""
    digest = hashlib.sha256()
    for key, tensor in sorted(_weights(generator).items()):
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


# ---- loading -----------------------------------------------------------------------------------------
def _parse_document(text: str, source: Path) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise CheckpointError(source, f"invalid JSON ({error.msg} at line {error.lineno}, column {error.colno})") from None
    except RecursionError:
        raise CheckpointError(source, "invalid JSON (nested too deeply)") from None
    except ValueError:  # json refuses integers of thousands of digits
        raise CheckpointError(source, "invalid JSON (a number too long to read)") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CheckpointError(source, f'not a ganinterface generator description (expected "format": "{FORMAT}")')
    if document.get("version") != VERSION:
        raise CheckpointError(source, f"unsupported format version {document.get('version')!r} (this version reads {VERSION})")
    if not isinstance(document.get("config"), dict):
        raise CheckpointError(source, 'the description has no "config" object')
    return document


def _read_description(path: Path, embedded: str | None) -> tuple[dict[str, Any], Path]:
    """The description and the file it came from (the sidecar, else the weights file)."""
    sidecar = sidecar_path(path)
    if sidecar.is_file():
        try:
            text = sidecar.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise CheckpointError(sidecar, f"cannot read ({error})") from None
        return _parse_document(text, sidecar), sidecar
    if embedded is None:
        raise CheckpointError(path, f"no model description: neither {sidecar.name} beside it nor "
                                    f"'{METADATA_KEY}' metadata inside it")
    return _parse_document(embedded, path), path


def _generator_class(architecture: Any, source: Path) -> type[GeneratorBase]:
    if architecture not in GENERATOR_CLASSES:
        known = ", ".join(GENERATOR_CLASSES)
        raise CheckpointError(source, f"unknown architecture {architecture!r} (known: {known})")
    module_name, class_name = GENERATOR_CLASSES[architecture]
    return getattr(importlib.import_module(module_name), class_name)


def _check_shapes(expected: dict[str, torch.Tensor], stored: dict[str, torch.Tensor], path: Path) -> None:
    missing = sorted(set(expected) - set(stored))
    if missing:
        raise CheckpointError(path, f"weights missing for {missing[0]}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    unexpected = sorted(set(stored) - set(expected))
    if unexpected:
        raise CheckpointError(path, f"unexpected tensor {unexpected[0]}" + (f" and {len(unexpected) - 1} more" if len(unexpected) > 1 else ""))
    for key, tensor in expected.items():
        if tuple(stored[key].shape) != tuple(tensor.shape):
            raise CheckpointError(path, f"{key} has shape {tuple(stored[key].shape)}, the config needs {tuple(tensor.shape)}")


def load_native(path: str | os.PathLike[str]) -> GeneratorBase:
    """Rebuild the generator saved by ``save_native`` (in eval mode, on the CPU)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(path, "is a directory, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(path, "no such file")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as weights_file:
            embedded = (weights_file.metadata() or {}).get(METADATA_KEY)
            stored = {key: weights_file.get_tensor(key) for key in weights_file.keys()}
    except Exception as error:  # safetensors raises its own error types for every kind of damage
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(path, f"not a readable safetensors file ({reason})") from None
    document, described_in = _read_description(path, embedded)
    cls = _generator_class(document.get("architecture"), described_in)
    try:
        generator = cls(**document["config"])
    except limits.BAD_CONFIG as error:
        raise CheckpointError(described_in, f"invalid {document['architecture']} config ({error})") from None
    _check_shapes(generator.state_dict(), stored, path)
    generator.load_state_dict(stored, strict=True)
    return generator.eval()
