"""Latent directions: finding them (mean difference, PCA of W, SeFa, linear boundaries, style
channels) and storing them safely.

A direction moves ws rows ``first .. last`` by ``amount * vector`` (a ``DirectionEdit``).  On disk it
is ``NAME.npy`` (the float32 vector, (w_dim,) or (num_ws, w_dim)) plus ``NAME.json`` (format, layer
range, the hash of the model it was made for, provenance).  Loading refuses a direction made for
another model or of the wrong shape with one line naming the file; ``.pt`` (weights only) and CSV
vectors from other tools load too.

A style-space direction offsets a few modulation styles (``StyleChannelEdit``); it is one JSON file,
``NAME.json`` of format ``ganinterface.style-direction``, listing [layer, channel, offset] triples
(``offsets``) and, for a two-sided direction, the triples used below zero (``negative_offsets``).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganinterface.atomic import atomic_write_bytes
from ganinterface.engine.kinds import DirectionEdit, StyleChannelEdit
from ganinterface.engine.kinds.style_channels import StyleOffset, read_offsets
from ganinterface.engine.latents import z_from_seed
from ganinterface.engine.scene import SceneFormatError, load_npy, parse_json
from ganinterface.models.base import GeneratorBase
from ganinterface.models.nvlabs_pkl import first_line

DIRECTION_FORMAT = "ganinterface.direction"
DIRECTION_VERSION = 1
STYLE_DIRECTION_FORMAT = "ganinterface.style-direction"
STYLE_DIRECTION_VERSION = 1
W_SAMPLE_BATCH = 512  # latents mapped in one pass by sample_w


class DirectionError(ValueError):
    """A direction cannot be computed, saved or loaded; one line naming the file and the problem."""


@dataclasses.dataclass(frozen=True, eq=False)
class Direction:
    vector: np.ndarray  # (w_dim,) or (num_ws, w_dim)
    first: int = 0
    last: int | None = None  # inclusive; None = the last w
    name: str = ""
    model_hash: str = ""  # "" = not tied to a model
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_edit(self, amount: float = 1.0, source: str = "") -> DirectionEdit:
        return DirectionEdit(self.vector, amount, first=self.first, last=self.last, name=self.name,
                             source=source)


@dataclasses.dataclass(frozen=True, eq=False)
class StyleDirection:
    """Offsets of a few modulation styles: amount 1 adds ``offset`` to each (layer, channel); a
    two-sided one has ``negative_offsets`` for amounts below zero (amount -1 subtracts them)."""

    offsets: tuple[StyleOffset, ...]
    name: str = ""
    model_hash: str = ""
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)
    negative_offsets: tuple[StyleOffset, ...] = ()

    def to_edit(self, amount: float = 1.0, source: str = "") -> StyleChannelEdit:
        return StyleChannelEdit(self.offsets, amount, name=self.name, source=source,
                                negative_offsets=self.negative_offsets)


# ---- finding directions ----------------------------------------------------------------------------

def mean_difference(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """mean(positive ws) - mean(negative ws): amount 1 takes the negatives' mean to the positives'.

    Inputs are (N, w_dim) or (N, num_ws, w_dim); the result drops the N axis.
    """
    positive, negative = np.asarray(positive, np.float64), np.asarray(negative, np.float64)
    if len(positive) == 0 or len(negative) == 0:
        raise DirectionError("need at least one positive and one negative example")
    if positive.shape[1:] != negative.shape[1:]:
        raise DirectionError(f"positive {positive.shape[1:]} and negative {negative.shape[1:]} "
                             "latents differ in shape")
    return (positive.mean(axis=0) - negative.mean(axis=0)).astype(np.float32)


def boundary_normal(x: np.ndarray, labels: np.ndarray, l2: float = 1.0,
                    iterations: int = 50) -> np.ndarray:
    """Unit normal of the L2-regularised logistic-regression boundary between ``labels`` 1 and 0
    of the rows of ``x`` (N, D), pointing towards 1 (InterFaceGAN uses an SVM; either gives the
    separating hyperplane's normal).  Newton's method: D is small (w_dim), so it is exact and fast.
    """
    x, labels = np.asarray(x, np.float64), np.asarray(labels)
    if x.ndim != 2 or len(x) != len(labels):
        raise DirectionError(f"need samples (N, D) and N labels, got {x.shape} and {labels.shape}")
    if labels.min() == labels.max():
        raise DirectionError("need samples with each label to find a boundary")
    features = np.hstack([(x - x.mean(axis=0)) / x.std(), np.ones((len(x), 1))])
    penalty = np.full(features.shape[1], l2)
    penalty[-1] = 0.0  # the intercept is not regularised
    beta = np.zeros(features.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-features @ beta))
        gradient = features.T @ (p - labels) + penalty * beta
        hessian = (features.T * (p * (1 - p))) @ features + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-9:
            break
    normal = beta[:-1]
    return (normal / np.linalg.norm(normal)).astype(np.float32)


def conditioned(normal: np.ndarray, others: np.ndarray) -> np.ndarray:
    """``normal`` with the span of ``others`` (K, D) projected out, unit length: moving along it
    leaves the other boundaries' sides unchanged (InterFaceGAN's conditional manipulation)."""
    normal, others = np.asarray(normal, np.float64), np.asarray(others, np.float64).reshape(-1, len(normal))
    basis = np.linalg.qr(others.T)[0] if len(others) else np.zeros((len(normal), 0))
    residual = normal - basis @ (basis.T @ normal)
    length = np.linalg.norm(residual)
    if length < 1e-6 * np.linalg.norm(normal):
        raise DirectionError("the direction lies in the span of the others; nothing is left of it")
    return (residual / length).astype(np.float32)


def effect_sizes(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """Per column of (N, C) samples: (mean of positives - mean of negatives) / pooled std."""
    positive, negative = np.asarray(positive, np.float64), np.asarray(negative, np.float64)
    if len(positive) < 2 or len(negative) < 2:
        raise DirectionError("need at least two positive and two negative examples")
    pooled = np.sqrt((positive.var(axis=0, ddof=1) + negative.var(axis=0, ddof=1)) / 2)
    return (positive.mean(axis=0) - negative.mean(axis=0)) / np.maximum(pooled, 1e-12)


def _fix_signs(vectors: np.ndarray) -> np.ndarray:
    """Eigenvectors have no sign; make each one's largest entry positive so results are stable."""
    largest = vectors[np.arange(len(vectors)), np.argmax(np.abs(vectors), axis=1)]
    return vectors * np.where(largest < 0, -1.0, 1.0)[:, None]


def principal_directions(ws: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """PCA of sampled w (N, w_dim): (unit components (count, w_dim), their std devs (count,))."""
    ws = np.asarray(ws, np.float64)
    if ws.ndim != 2 or len(ws) < 2:
        raise DirectionError(f"need several w samples as (N, w_dim), got shape {ws.shape}")
    centred = ws - ws.mean(axis=0)
    _, singular, components = np.linalg.svd(centred, full_matrices=False)
    count = min(count, len(singular))
    std = singular[:count] / np.sqrt(len(ws) - 1)
    return _fix_signs(components[:count]).astype(np.float32), std.astype(np.float32)


@torch.no_grad()
def sample_w(generator: GeneratorBase, seeds: Sequence[int], class_index: int | None = None,
             batch: int = W_SAMPLE_BATCH) -> np.ndarray:
    """(len(seeds), w_dim): the w of each seed's z (``z_from_seed``, as renders draw it), mapped
    ``batch`` at a time; a conditional model's class is ``class_index`` or, when None, drawn from
    the seed's ``RandomState`` after z."""
    device = generator.w_avg.device
    out = []
    for begin in range(0, len(seeds), batch):
        chunk = seeds[begin:begin + batch]
        z = torch.from_numpy(np.concatenate([z_from_seed(s, generator.z_dim) for s in chunk]))
        c = None
        if generator.c_dim > 0:
            classes = [_class_of(s, generator) if class_index is None else class_index for s in chunk]
            c = torch.nn.functional.one_hot(torch.as_tensor(classes), generator.c_dim).float().to(device)
        out.append(generator.mapping(z.to(device), c)[:, 0].float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, generator.w_dim), np.float32)


def _class_of(seed: int, generator: GeneratorBase) -> int:
    rng = np.random.RandomState(int(seed))
    rng.randn(1, generator.z_dim)
    return int(rng.randint(generator.c_dim))


def ganspace_directions(generator: GeneratorBase, count: int = 10, samples: int = 10_000,
                        first_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """GANSpace-style principal directions of W: PCA of the w of ``samples`` seeds from
    ``first_seed`` on."""
    return principal_directions(sample_w(generator, range(first_seed, first_seed + samples)), count)


def style_layers(generator: GeneratorBase, first: int = 0, last: int | None = None,
                 include_torgb: bool = False) -> list[str]:
    """Names of the layers reading ws rows first..last (torgb layers left out by default, as SeFa)."""
    last = generator.num_ws - 1 if last is None else last
    return [layer.name for layer in generator.layers
            if any(first <= i <= last for i in layer.w_indices)
            and (layer.kind == "conv" or (include_torgb and layer.kind == "torgb"))]


def modulation_weights(generator: GeneratorBase, layers: Sequence[str]) -> np.ndarray:
    """The affine (style) weights of ``layers`` stacked: (sum of their input channels, w_dim)."""
    parameters = dict(generator.named_parameters())
    blocks = []
    for name in layers:
        weight = parameters.get(f"synthesis.{name}.affine.weight")
        if weight is None:
            raise DirectionError(f"layer {name!r} has no modulation weights (synthesis.{name}.affine)")
        blocks.append(weight.detach().float().cpu().numpy())
    if not blocks:
        raise DirectionError("no layers chosen for the factorisation")
    return np.concatenate(blocks).astype(np.float64)


def sefa_directions(generator: GeneratorBase, count: int = 10, first: int = 0,
                    last: int | None = None, normalise: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form factorisation (SeFa): top eigenvectors of AᵀA, A the layers' modulation weights.

    ``normalise`` scales every row of A to unit length first, as the SeFa authors do.  Returns
    (unit directions (count, w_dim), eigenvalues (count,)), largest first.
    """
    weights = modulation_weights(generator, style_layers(generator, first, last))
    if normalise:
        weights = weights / np.maximum(np.linalg.norm(weights, axis=1, keepdims=True), 1e-12)
    eigenvalues, eigenvectors = np.linalg.eigh(weights.T @ weights)
    order = np.argsort(eigenvalues)[::-1][:count]
    return _fix_signs(eigenvectors[:, order].T).astype(np.float32), eigenvalues[order].astype(np.float32)


# ---- the model a direction belongs to ------------------------------------------------------------

def model_hash(generator: GeneratorBase) -> str:
    """sha256 of the generator's weights (``models.native.generator_hash``)."""
    from ganinterface.models.native import generator_hash

    return generator_hash(generator)


# ---- files ---------------------------------------------------------------------------------------

def save_direction(path: str | os.PathLike[str], direction: Direction) -> tuple[Path, Path]:
    """Write ``path`` as NAME.npy + NAME.json (both atomically); returns the two paths."""
    npy = Path(path).with_suffix(".npy")
    sidecar = npy.with_suffix(".json")
    vector = np.asarray(direction.vector, dtype=np.float32)
    buffer = _npy_bytes(vector)
    meta = {"format": DIRECTION_FORMAT, "version": DIRECTION_VERSION, "name": direction.name,
            "shape": list(vector.shape), "first": direction.first, "last": direction.last,
            "model_hash": direction.model_hash, "provenance": direction.provenance}
    try:
        atomic_write_bytes(npy, buffer)
        atomic_write_bytes(sidecar, (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())
    except OSError as error:
        raise DirectionError(f"{npy}: cannot write ({error.strerror or error})") from None
    return npy, sidecar


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def save_style_direction(path: str | os.PathLike[str], direction: StyleDirection) -> Path:
    """Write ``path`` as NAME.json (atomically); returns its path."""
    path = Path(path).with_suffix(".json")
    meta = {"format": STYLE_DIRECTION_FORMAT, "version": STYLE_DIRECTION_VERSION,
            "name": direction.name, "model_hash": direction.model_hash,
            "offsets": [list(offset) for offset in direction.offsets],
            "provenance": direction.provenance}
    if direction.negative_offsets:
        meta["negative_offsets"] = [list(offset) for offset in direction.negative_offsets]
    try:
        atomic_write_bytes(path, (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())
    except OSError as error:
        raise DirectionError(f"{path}: cannot write ({error.strerror or error})") from None
    return path


STYLE_DIRECTION_KEYS = {"format", "version", "name", "model_hash", "offsets", "negative_offsets",
                        "provenance"}


def _read_style_direction(path: Path, meta: dict[str, Any]) -> StyleDirection:
    unknown = sorted(set(meta) - STYLE_DIRECTION_KEYS)
    if unknown:
        raise DirectionError(f"{path}: unknown field(s): {', '.join(unknown)}")
    if meta.get("version", STYLE_DIRECTION_VERSION) != STYLE_DIRECTION_VERSION:
        raise DirectionError(f"{path}: version {meta.get('version')!r} of {STYLE_DIRECTION_FORMAT} "
                             f"is not supported (this program reads version {STYLE_DIRECTION_VERSION})")
    if "offsets" not in meta:
        raise DirectionError(f"{path}: has no offsets")
    try:
        offsets = read_offsets(meta["offsets"], "offsets")
        negative = (read_offsets(meta["negative_offsets"], "negative_offsets")
                    if "negative_offsets" in meta else ())
    except SceneFormatError as error:
        raise DirectionError(f"{path}: {error}") from None
    for field in ("name", "model_hash"):
        if not isinstance(meta.get(field, ""), str):
            raise DirectionError(f"{path}: {field} should be text")
    if not isinstance(meta.get("provenance", {}), dict):
        raise DirectionError(f"{path}: provenance should be an object")
    return StyleDirection(offsets, name=meta.get("name") or path.stem,
                          model_hash=meta.get("model_hash", ""),
                          provenance=dict(meta.get("provenance", {})), negative_offsets=negative)


def check_style_fits(path: str | os.PathLike[str], direction: StyleDirection,
                     style_sizes: dict[str, int]) -> None:
    """DirectionError naming the file when the model lacks one of the direction's style channels."""
    if not style_sizes:
        raise DirectionError(f"{path}: a style-space direction; this model has no modulation styles")
    for field, offsets in (("offsets", direction.offsets), ("negative_offsets", direction.negative_offsets)):
        for layer, channel, _ in offsets:
            if layer not in style_sizes:
                raise DirectionError(f"{path}: {field} layer {layer!r}, which has no modulation "
                                     "styles in this model")
            if channel >= style_sizes[layer]:
                raise DirectionError(f"{path}: {field} style {channel} of {layer}, which has "
                                     f"{style_sizes[layer]} (0..{style_sizes[layer] - 1})")


def load_direction(path: str | os.PathLike[str], *, model_hash: str = "", w_dim: int | None = None,
                   num_ws: int | None = None) -> Direction | StyleDirection:
    """Read a direction (.npy with optional .json sidecar, .pt, .csv, or a style-space direction's
    .json) and check it fits the model."""
    path = Path(path)
    if not path.is_file():
        raise DirectionError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _load_json_direction(path, model_hash, w_dim, num_ws)
    readers = {".npy": _read_npy, ".pt": _read_torch, ".pth": _read_torch, ".csv": _read_csv,
               ".txt": _read_csv}
    if suffix not in readers:
        raise DirectionError(f"{path}: unknown direction format {suffix or '(no suffix)'}; "
                             "use .npy, .pt or .csv")
    vector = readers[suffix](path)
    meta = _read_sidecar(path) if suffix == ".npy" else {}
    made_for = meta.get("model_hash") or ""
    if made_for and model_hash and made_for != model_hash:
        raise DirectionError(f"{path}: made for another model (weights {made_for[:12]}…, this model "
                             f"is {model_hash[:12]}…)")
    vector = _check_shape(path, vector, w_dim, num_ws)
    return Direction(vector=vector, first=int(meta.get("first", 0)), last=meta.get("last"),
                     name=str(meta.get("name") or path.stem), model_hash=made_for,
                     provenance=dict(meta.get("provenance") or {}))


def _load_json_direction(path: Path, model_hash: str, w_dim: int | None,
                         num_ws: int | None) -> Direction | StyleDirection:
    """A style-space direction, or the sidecar of a W direction (its .npy beside it is loaded)."""
    meta = _read_json(path)
    if isinstance(meta, dict) and meta.get("format") == DIRECTION_FORMAT:
        return load_direction(path.with_suffix(".npy"), model_hash=model_hash, w_dim=w_dim, num_ws=num_ws)
    if not isinstance(meta, dict) or meta.get("format") != STYLE_DIRECTION_FORMAT:
        raise DirectionError(f"{path}: not a direction ({STYLE_DIRECTION_FORMAT} or the "
                             f"{DIRECTION_FORMAT} sidecar of a .npy)")
    direction = _read_style_direction(path, meta)
    if direction.model_hash and model_hash and direction.model_hash != model_hash:
        raise DirectionError(f"{path}: made for another model (weights {direction.model_hash[:12]}…, "
                             f"this model is {model_hash[:12]}…)")
    return direction


def _read_json(path: Path) -> Any:
    try:
        return parse_json(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DirectionError(f"{path}: cannot read ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise DirectionError(f"{path}: not valid JSON (not UTF-8 text)") from None
    except SceneFormatError as error:
        raise DirectionError(f"{path}: {error}") from None


def _check_shape(path: Path, vector: np.ndarray, w_dim: int | None, num_ws: int | None) -> np.ndarray:
    if vector.ndim == 2 and vector.shape[0] == 1:
        vector = vector[0]
    if vector.dtype.kind not in "fiu" or vector.ndim not in (1, 2):
        raise DirectionError(f"{path}: a direction must be a numeric vector or matrix, got "
                             f"{vector.dtype} of shape {vector.shape}")
    with np.errstate(over="ignore"):  # values beyond float32 become inf, refused below
        vector = vector.astype(np.float32)
    if not np.all(np.isfinite(vector)):
        raise DirectionError(f"{path}: direction contains NaN or infinite values")
    if w_dim is not None:
        fits = vector.shape == (w_dim,) or (num_ws is not None and vector.shape == (num_ws, w_dim))
        if not fits:
            wanted = f"({w_dim},)" + (f" or ({num_ws}, {w_dim})" if num_ws is not None else "")
            raise DirectionError(f"{path}: direction has shape {vector.shape}, this model needs {wanted}")
    return vector


def _read_npy(path: Path) -> np.ndarray:
    try:
        with path.open("rb") as stream:
            return load_npy(stream)
    except (ValueError, OSError) as error:
        raise DirectionError(f"{path}: not a readable .npy array ({error})") from None


# what save_direction writes; every field but format is optional (a hand-written sidecar may
# name only the rows it moves)
SIDECAR_KEYS = {"format", "version", "name", "shape", "first", "last", "model_hash", "provenance"}


def _read_sidecar(path: Path) -> dict[str, Any]:
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        return {}
    meta = _read_json(sidecar)
    if not isinstance(meta, dict) or meta.get("format") != DIRECTION_FORMAT:
        raise DirectionError(f"{sidecar}: not a {DIRECTION_FORMAT} sidecar")
    unknown = sorted(set(meta) - SIDECAR_KEYS)
    if unknown:
        raise DirectionError(f"{sidecar}: unknown field(s): {', '.join(unknown)}")
    if not isinstance(meta.get("first", 0), int) or not isinstance(meta.get("last"), (int, type(None))):
        raise DirectionError(f"{sidecar}: first/last must be integers")
    return meta


def _read_torch(path: Path) -> np.ndarray:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle errors of every kind: the file is refused, nothing runs
        raise DirectionError(f"{path}: not a readable weights-only torch file "
                             f"({first_line(error)[:200]})") from None
    if isinstance(data, dict):
        tensors = {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}
        preferred = [k for k in ("direction", "latent", "w", "vector") if k in tensors]
        if preferred:
            data = tensors[preferred[0]]
        elif len(tensors) == 1:
            data = next(iter(tensors.values()))
        else:
            raise DirectionError(f"{path}: expected one tensor (or a 'direction' entry), found "
                                 f"{sorted(map(str, tensors)) or 'none'}")
    if not isinstance(data, torch.Tensor):
        raise DirectionError(f"{path}: expected a tensor, found {type(data).__name__}")
    return data.detach().float().cpu().numpy()


def _read_csv(path: Path) -> np.ndarray:
    try:
        with warnings.catch_warnings():  # an empty file: refused below, not warned about on stderr
            warnings.simplefilter("ignore", UserWarning)
            values = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2, comments="#")
    except (ValueError, OSError, UnicodeDecodeError) as error:
        raise DirectionError(f"{path}: not a numeric CSV ({str(error).splitlines()[0]})") from None
    return values
