"""One entry point for every checkpoint format: ``load_generator(path)``.

The format is recognised from the file's first bytes, never from its extension:

* ``\\x80`` + protocol byte                -> a pickle: NVlabs ``.pkl`` of PyTorch or TensorFlow networks
  (restricted unpickler), unless it is a legacy (pre-1.6) ``torch.save`` file, which starts with a
  pickled magic number;
* ``PK\\x03\\x04`` (zip)                   -> ``torch.save``: rosinality ``.pt`` or an NVlabs-style
  ``{"init_kwargs", "state_dict"}`` dict, read with ``torch.load(weights_only=True)``;
* 8-byte little-endian length + ``{``     -> safetensors: our native format.

Every failure is a ``CheckpointError`` whose message is one line naming the file and the problem.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import pickle
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ganinterface import bundled
from ganinterface.models.base import CheckpointError, GeneratorBase
from ganinterface.models.nvlabs_pkl import first_line, forbidden_global, weights_only_reason

log = logging.getLogger(__name__)

FORMAT_NVLABS_PICKLE = "nvlabs-pickle"
FORMAT_TF_PICKLE = "tensorflow-pickle"
FORMAT_ROSINALITY = "rosinality"
FORMAT_TORCH_STATE_DICT = "torch-state-dict"
FORMAT_NATIVE = "native"

PICKLE_PROTOCOLS = range(2, 6)
LEGACY_TORCH_MAGIC_PREFIX = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
ZIP_MAGIC = b"PK\x03\x04"
SNIFF_BYTES = 16


@dataclasses.dataclass
class LoadedCheckpoint:
    """A generator plus what we learnt about the file it came from."""

    generator: GeneratorBase
    format: str  # one of the FORMAT_* names
    source_class: str | None = None  # e.g. "training.networks_stylegan3.Generator"
    notes: list[str] = dataclasses.field(default_factory=list)
    description: str | None = None  # e.g. "StyleGAN2 (config-f), TensorFlow pickle, 1024 × 1024 px, 18 ws"


def load_generator(path: str | os.PathLike[str] | None, device: str | torch.device = "cpu") -> GeneratorBase:
    """Load any supported checkpoint; ``None`` loads the built-in portrait model."""
    return load_checkpoint(path, device=device).generator


def load_checkpoint(path: str | os.PathLike[str] | None,
                    device: str | torch.device = "cpu") -> LoadedCheckpoint:
    if path is None:
        path = bundled.builtin_checkpoint()
        if not path.is_file():
            raise CheckpointError(path, "the built-in model is not there (this installation is "
                                        "missing the package's bundled checkpoints)")
    path = Path(path)
    head = _read_head(path)
    if _is_pickle(head):
        loaded = _load_pickle(path)
    elif _is_torch_file(head):
        loaded = _load_torch_file(path)
    elif _looks_like_safetensors(head, path.stat().st_size):
        loaded = _load_native(path)
    else:
        raise CheckpointError(path, "unknown format (not an NVlabs pickle, a torch.save file or a "
                                    "safetensors file)")
    loaded.generator = loaded.generator.to(device).eval()
    return loaded


@dataclasses.dataclass
class LoadedDiscriminator:
    """A checkpoint's own discriminator and what it is, in words."""

    network: torch.nn.Module  # has ``features(images)``: its activations, finest first
    description: str  # e.g. "the discriminator in ffhq.pkl (training.networks_stylegan2.Discriminator)"


def load_checkpoint_discriminator(path: str | os.PathLike[str], img_height: int,
                                  img_width: int) -> LoadedDiscriminator | None:
    """The discriminator carried inside a checkpoint file (an NVlabs snapshot's ``D``, a
    rosinality file's ``d``), for images of ``img_height`` x ``img_width``; None when the file
    carries none.  Raises ``CheckpointError`` (one line naming the file) for one that cannot be
    built or that reads images of another size."""
    from ganinterface.models import nvlabs_pkl, rosinality, tf_pickle

    path = Path(path)
    head = _read_head(path)
    if _is_pickle(head):
        with path.open("rb") as stream:
            data = nvlabs_pkl.unpickle_checkpoint(stream, path, tf_pickle.ALLOWED_GLOBALS)
        network, kind = nvlabs_pkl.discriminator_from_data(data, path), "NVlabs StyleGAN2 resnet D"
    elif _is_torch_file(head):
        network, kind = rosinality.load_rosinality_discriminator(read_torch_weights_only(path), path), "rosinality"
    else:
        return None
    if network is None:
        return None
    size = network.img_resolution
    if (size, size) != (img_height, img_width):
        raise CheckpointError(path, f"its discriminator reads {size} × {size} px images; the generator "
                                    f"makes {img_width} × {img_height} px")
    return LoadedDiscriminator(network, f"the discriminator in {path.name} ({kind})")


def _is_pickle(head: bytes) -> bool:
    return (head[:1] == b"\x80" and bool(head[1:2]) and head[1] in PICKLE_PROTOCOLS
            and not head.startswith(LEGACY_TORCH_MAGIC_PREFIX))


def _is_torch_file(head: bytes) -> bool:
    return head.startswith(ZIP_MAGIC) or head.startswith(LEGACY_TORCH_MAGIC_PREFIX)


def _read_head(path: Path) -> bytes:
    try:
        if path.is_dir():
            raise CheckpointError(path, "is a directory, not a checkpoint file")
        with path.open("rb") as stream:
            head = stream.read(SNIFF_BYTES)
    except FileNotFoundError:
        raise CheckpointError(path, "no such file") from None
    except PermissionError:
        raise CheckpointError(path, "permission denied") from None
    except OSError as error:
        raise CheckpointError(path, f"cannot read it ({error.strerror or error})") from None
    if not head:
        raise CheckpointError(path, "empty file")
    return head


def _looks_like_safetensors(head: bytes, file_size: int) -> bool:
    if len(head) < 9:
        return False
    (header_length,) = struct.unpack("<Q", head[:8])
    return head[8:9] == b"{" and 2 <= header_length <= file_size - 8


def _load_pickle(path: Path) -> LoadedCheckpoint:
    """An NVlabs pickle of either era: PyTorch networks, or TensorFlow ``Network`` objects."""
    from ganinterface.models import nvlabs_pkl, tf_pickle

    with path.open("rb") as stream:
        data = nvlabs_pkl.unpickle_checkpoint(stream, path, tf_pickle.ALLOWED_GLOBALS)
    notes = ["embedded source code not executed"]
    if tf_pickle.is_tf_pickle(data):
        model = tf_pickle.load_tf_model(data, path)
        return LoadedCheckpoint(model.generator, FORMAT_TF_PICKLE, model.source_class,
                                notes=[*model.notes, *notes], description=model.description())
    checkpoint = nvlabs_pkl.checkpoint_from_data(data, path)
    return LoadedCheckpoint(checkpoint.generator, FORMAT_NVLABS_PICKLE, checkpoint.source_class,
                            notes=[*checkpoint.notes, *notes])


def _load_native(path: Path) -> LoadedCheckpoint:
    from ganinterface.models.native import load_native

    try:
        generator = load_native(path)
    except CheckpointError:
        raise
    except Exception as error:  # safetensors reports damage as its own SafetensorError, among others
        log.debug("native checkpoint %s failed to load", path, exc_info=True)
        raise CheckpointError(path, f"corrupt native checkpoint ({type(error).__name__}: "
                                    f"{first_line(error)})") from None
    return LoadedCheckpoint(generator, FORMAT_NATIVE, type(generator).__name__)


def _load_torch_file(path: Path) -> LoadedCheckpoint:
    data = read_torch_weights_only(path)
    from ganinterface.models import rosinality

    if rosinality.is_rosinality_checkpoint(data):
        checkpoint = rosinality.load_rosinality(data, path)
        config = checkpoint.config
        notes = [f"size {config.size}, style_dim {config.style_dim}, n_mlp {config.n_mlp}, "
                 f"channel_multiplier {config.channel_multiplier or 'not determinable'}",
                 f"w_avg from {checkpoint.w_avg_source}"]
        return LoadedCheckpoint(checkpoint.generator, FORMAT_ROSINALITY, "rosinality model.Generator", notes)
    return _load_nvlabs_state_dict(data, path)


def read_torch_weights_only(path: Path) -> Any:
    """``torch.load(weights_only=True)``; rosinality's ``args`` (an argparse.Namespace) is allowed."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        refusal = forbidden_global(error, "the torch file")
        if refusal is not None:
            raise CheckpointError(path, str(refusal)) from None
        raise CheckpointError(path, f"truncated or corrupt torch file ({weights_only_reason(error)})") from None
    except Exception as error:  # torch reports damage with many exception types
        raise CheckpointError(path, f"truncated or corrupt torch file ({type(error).__name__}: "
                                    f"{first_line(error)})") from None


def _load_nvlabs_state_dict(data: Any, path: Path) -> LoadedCheckpoint:
    """A torch-saved ``{"init_kwargs": ..., "state_dict": ...}`` (optionally under G_ema / G)."""
    from ganinterface.models import nvlabs_pkl

    if not isinstance(data, Mapping):
        raise CheckpointError(path, f"torch file holds a {type(data).__name__}, not a generator checkpoint")
    entry = next((data[k] for k in nvlabs_pkl.SNAPSHOT_GENERATOR_KEYS if isinstance(data.get(k), Mapping)), data)
    state_dict = entry.get("state_dict", entry)
    if not isinstance(state_dict, Mapping) or not any(str(k).startswith("synthesis.") for k in state_dict):
        keys = ", ".join(sorted(str(k) for k in data)[:8]) or "nothing"
        raise CheckpointError(path, f"torch file is not a known generator checkpoint (it holds {keys})")
    state_dict = {str(k): v for k, v in state_dict.items()}
    architecture = "stylegan3" if "synthesis.input.freqs" in state_dict else "stylegan2"
    init_kwargs = entry.get("init_kwargs")
    if not isinstance(init_kwargs, Mapping):
        raise CheckpointError(path, f"NVlabs-style {architecture} weights without init_kwargs, so the "
                                    "network's configuration is unknown; save {'init_kwargs': "
                                    "G.init_kwargs, 'state_dict': G.state_dict()}")
    generator = nvlabs_pkl.build_generator(architecture, (), dict(init_kwargs), state_dict, path)
    class_name = entry.get("class_name")
    return LoadedCheckpoint(generator, FORMAT_TORCH_STATE_DICT, class_name if isinstance(class_name, str) else None)
