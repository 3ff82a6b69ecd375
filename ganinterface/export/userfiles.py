"""The files a user opens and saves: one reader and one writer per kind, for the window and the CLI.

Scenes (``.json``, or a ``.png`` that carries one), the window's autosaved session, recipes (with
the check of the model they were made for), latents (``.npy``, W or W+; ``.npz`` latent files with
the model's hash, the source picture's name and optional noise maps), directions (the format itself lives in
``engine.directions``), images and raw arrays.  Every reader and writer fails with a
``UserFileError``: one line naming the file as it was given and what is wrong with it, in the file's
own terms, so the window's dialog and the command line's error say the same thing.  Every writer is
atomic: a failed write leaves the old file as it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ganinterface.atomic import atomic_write, atomic_write_bytes, atomic_write_text
from ganinterface.engine.animation import LatentKeyframe, as_latent_keyframe, latent_keyframe
from ganinterface.engine.scene import (Recipe, Scene, SceneFormatError, decode_array, encode_array,
                                       load_npy, optional, parse_json, read_detail_maps, read_int,
                                       read_noise_maps, read_str)
from ganinterface.models.base import one_line

if TYPE_CHECKING:
    from ganinterface.engine.directions import Direction, StyleDirection
    from ganinterface.models.base import GeneratorBase

PathLike = str | os.PathLike[str]
CLIPBOARD_LATENT_KEY = "ganinterface.latent"
LATENT_FORMAT = "ganinterface.latent"
LATENT_VERSION = 1
NOISE_PREFIX = "noise."
DETAIL_PREFIX = "detail."
MAX_LATENT_MEMBER_BYTES = 256 * 2**20  # a member's size once inflated; refused beyond it


class UserFileError(ValueError):
    """A user file cannot be read or written; ``str()`` is one line: the file, then the problem."""

    def __init__(self, message: str):
        super().__init__(one_line(message))

    @classmethod
    def at(cls, path: PathLike, problem: str) -> "UserFileError":
        return cls(f"{os.fspath(path)}: {problem}")


class WrongModelError(UserFileError):
    """A recipe or direction was made for another generator than the one it is used with."""


class LatentShape(Protocol):
    """What a latent must fit: a generator, or the window's description of one."""

    num_ws: int
    w_dim: int


# ---- scenes and images ------------------------------------------------------------------------------

def read_scene(path: PathLike) -> Scene:
    """A Scene from a ``.json`` scene file, or from a ``.png`` written with its scene."""
    from ganinterface.export.images import read_png_scene

    if Path(path).suffix.lower() != ".png":
        return _parsed(path, Scene.from_json, _read_text(path, "scene"))
    try:
        scene = read_png_scene(path)
    except FileNotFoundError:
        raise UserFileError.at(path, "no such scene file") from None
    except OSError as error:
        raise UserFileError.at(path, f"cannot read ({_reason(error)})") from None
    except SceneFormatError as error:  # it names the file already
        raise UserFileError(str(error)) from None
    if scene is None:
        raise UserFileError.at(path, "this PNG carries no ganinterface scene")
    return scene


def write_scene(path: PathLike, scene: Scene) -> None:
    _write_text(path, scene.to_json())


def write_png(path: PathLike, image: np.ndarray, scene: Scene | None = None, *,
              scale: int = 1) -> None:
    """``image`` as a PNG (enlarged ``scale`` times), carrying ``scene`` if given."""
    from ganinterface.export.images import save_png

    with writing(path):
        save_png(path, image, scene, scale=scale)


def read_image(path: PathLike) -> np.ndarray:
    """Any image file Pillow reads, as uint8 RGB (H, W, 3)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise UserFileError.at(path, "no such image file") from None
    except (UnidentifiedImageError, OSError) as error:
        raise UserFileError.at(path, f"not a readable image ({_reason(error)})") from None
    except Image.DecompressionBombError:  # its header claims more pixels than it is safe to decode
        raise UserFileError.at(path, "image too large to open safely (its header claims "
                                     f"more than {Image.MAX_IMAGE_PIXELS * 2:,} pixels)") from None


# ---- the window's session ----------------------------------------------------------------------------

SESSION_FORMAT = "ganinterface.session"
SESSION_VERSION = 1
Keyframe = int | np.ndarray | LatentKeyframe  # a seed, or a W / W+ latent (with its maps)


@dataclasses.dataclass(frozen=True, eq=False)
class Session:
    """What the window autosaves to survive a crash: the document (its scene, edits included), the
    animation's keyframes, the scene file it was opened from and the checkpoint loaded."""

    scene: Scene
    keyframes: tuple[Keyframe, ...] = ()
    scene_path: str | None = None
    checkpoint: str | None = None  # None: the built-in model


def session_to_json(session: Session) -> str:
    keyframes = [_keyframe_to_dict(k) for k in session.keyframes]
    return json.dumps({"format": SESSION_FORMAT, "version": SESSION_VERSION,
                       "scene": session.scene.to_dict(), "keyframes": keyframes,
                       "scene_path": session.scene_path, "checkpoint": session.checkpoint},
                      indent=1, sort_keys=True)


def write_session(path: PathLike, session: Session) -> None:
    _write_text(path, session_to_json(session))


def read_session(path: PathLike) -> Session:
    return _parsed(path, _session_from_json, _read_text(path, "session"))


def _session_from_json(text: str) -> Session:
    data = parse_json(text)
    if not isinstance(data, dict) or data.get("format") != SESSION_FORMAT:
        found = data.get("format") if isinstance(data, dict) else None
        raise SceneFormatError(f"not a {SESSION_FORMAT} file (format field is {found!r})")
    if data.get("version") != SESSION_VERSION:
        raise SceneFormatError(f"unsupported {SESSION_FORMAT} version {data.get('version')!r} "
                               f"(this program reads {SESSION_VERSION})")
    keys = {"format", "version", "scene", "keyframes", "scene_path", "checkpoint"}
    if set(data) != keys:
        wrong = sorted(set(data) ^ keys)
        raise SceneFormatError(f"session keys {', '.join(wrong)} missing or unknown")
    if not isinstance(data["keyframes"], list):
        raise SceneFormatError("session.keyframes should be a list")
    return Session(Scene.from_dict(data["scene"]),
                   tuple(_keyframe(k, f"session.keyframes[{i}]")
                         for i, k in enumerate(data["keyframes"])),
                   optional(read_str)(data["scene_path"], "session.scene_path"),
                   optional(read_str)(data["checkpoint"], "session.checkpoint"))


def _keyframe_to_dict(keyframe: Keyframe) -> dict[str, Any]:
    if isinstance(keyframe, int):
        return {"seed": keyframe}
    latent = as_latent_keyframe(keyframe)
    data: dict[str, Any] = {"latent": encode_array(latent.w)}
    for key, maps in (("detail_maps", latent.detail), ("noise_maps", latent.noise)):
        if maps:
            data[key] = {name: encode_array(value) for name, value in sorted(maps.items())}
    return data


_KEYFRAME_MAPS = {"detail_maps": read_detail_maps, "noise_maps": read_noise_maps}


def _keyframe(value: object, what: str) -> Keyframe:
    if isinstance(value, dict) and set(value) == {"seed"}:
        return read_int(value["seed"], f"{what}.seed")
    if isinstance(value, dict) and "latent" in value and set(value) <= {"latent", *_KEYFRAME_MAPS}:
        latent = decode_array(value["latent"], f"{what}.latent")
        if latent.ndim not in (1, 2):
            raise SceneFormatError(f"{what}.latent should be a W or W+ latent, not {latent.ndim}-D")
        maps = {key: read(value[key], f"{what}.{key}") for key, read in _KEYFRAME_MAPS.items()
                if key in value}
        return latent_keyframe(latent, maps.get("detail_maps"), maps.get("noise_maps"))
    raise SceneFormatError(f"{what} should be {{\"seed\": ...}} or {{\"latent\": ...}}")


# ---- recipes --------------------------------------------------------------------------------------

def read_recipe(path: PathLike, model_hash: str | None = None) -> Recipe:
    """A recipe; with ``model_hash``, one made for another model is refused (``WrongModelError``)."""
    recipe = _parsed(path, Recipe.from_json, _read_text(path, "recipe"))
    if model_hash is not None:
        check_made_for(path, recipe.model_hash, model_hash)
    return recipe


def write_recipe(path: PathLike, recipe: Recipe) -> None:
    _write_text(path, recipe.to_json())


def check_made_for(path: PathLike, made_for: str, model_hash: str) -> None:
    """Refuse a file tied to the weights ``made_for`` when used with the weights ``model_hash``."""
    if made_for and made_for != model_hash:
        raise WrongModelError.at(path, f"made for another model ({made_for[:12]}…), "
                                    f"not this one ({model_hash[:12]}…)")


# ---- latents --------------------------------------------------------------------------------------

def read_latent(path: PathLike, model: LatentShape) -> np.ndarray:
    """A W (w_dim,) or W+ (num_ws, w_dim) latent from a ``.npy`` file, checked against ``model``."""
    try:
        with open(path, "rb") as stream:
            array = load_npy(stream)
    except FileNotFoundError:
        raise UserFileError.at(path, "no such latent file") from None
    except (OSError, ValueError) as error:
        raise UserFileError.at(path, f"not a readable .npy array ({_reason(error)})") from None
    return fitted_latent(array, model, path)


def write_latent(path: PathLike, latent: np.ndarray) -> None:
    write_array(path, latent)


@dataclasses.dataclass(frozen=True, eq=False)
class LatentFile:
    """A latent as a file of its own (``.npz``): a projected picture, or any latent worth keeping.

    ``w`` is (w_dim,) or (num_ws, w_dim); ``noise`` maps layer names to (h, w) noise maps when they
    were optimised, ``detail`` to (channels, h, w) detail maps when fitted; ``model_hash`` is
    ``models.native.generator_hash`` of the weights it was found with ("" for any); ``source`` the
    name of the picture it came from ("" if none)."""

    w: np.ndarray
    noise: dict[str, np.ndarray] | None = None
    model_hash: str = ""
    source: str = ""
    detail: dict[str, np.ndarray] | None = None

    def scene_fields(self) -> dict[str, Any]:
        """The latent as a Scene holds it: ``w``, ``noise_maps``, ``detail_maps``."""
        return {"w": self.w, "noise_maps": self.noise, "detail_maps": self.detail}


def write_latent_file(path: PathLike, latent: LatentFile) -> None:
    """The ``.npz`` file ``read_latent_file`` reads (see docs/file-formats.md)."""
    with writing(path):
        atomic_write_bytes(path, latent_file_bytes(latent))


def latent_file_bytes(latent: LatentFile) -> bytes:
    """A latent file's bytes: an ``.npz`` as ``np.savez`` writes it, its members dated 1980, so
    that one latent always makes the same bytes."""
    members = {"format": np.array(LATENT_FORMAT), "version": np.array(LATENT_VERSION),
               "w": np.ascontiguousarray(latent.w, dtype=np.float32),
               "model_hash": np.array(latent.model_hash), "source": np.array(latent.source)}
    for name, noise in (latent.noise or {}).items():
        members[NOISE_PREFIX + name] = np.ascontiguousarray(noise, dtype=np.float32)
    for name, detail in (latent.detail or {}).items():
        members[DETAIL_PREFIX + name] = np.ascontiguousarray(detail, dtype=np.float32)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, array in members.items():
            with archive.open(zipfile.ZipInfo(name + ".npy"), "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)
    return buffer.getvalue()


def read_latent_file(path: PathLike, model: LatentShape, model_hash: str | None = None,
                     noise_shapes: dict[str, tuple[int, ...]] | None = None) -> LatentFile:
    """A latent file checked against ``model`` (and, with ``model_hash``, against the weights it was
    made for: another model's is refused with ``WrongModelError``; with ``noise_shapes``, layer
    name -> (h, w), against the model's noise inputs; detail maps against ``model.layers`` where
    it lists them).  A plain ``.npy`` latent is read too, as a W/W+ latent without hash, source,
    noise or detail."""
    if not _starts_like_a_zip(path):
        return LatentFile(w=read_latent(path, model))
    members = _npz_members(path)
    if str(members.get("format", "")) != LATENT_FORMAT:
        raise UserFileError.at(path, f"not a latent file (an .npz without format "
                                     f"{LATENT_FORMAT!r})")
    version = members.get("version")
    if version is None or version.shape != () or int(version) != LATENT_VERSION:
        raise UserFileError.at(path, f"unsupported latent file version (this program reads {LATENT_VERSION})")
    if "w" not in members:
        raise UserFileError.at(path, "the latent file has no 'w' array")
    w = _latent_rows(members["w"], model, path)
    made_for = str(members.get("model_hash", ""))
    if model_hash is not None:
        check_made_for(path, made_for, model_hash)
    noise = {name[len(NOISE_PREFIX):]: _noise_map(array, name, path, noise_shapes)
             for name, array in members.items() if name.startswith(NOISE_PREFIX)}
    detail = {name[len(DETAIL_PREFIX):]: _detail_map(array, name, path, getattr(model, "layers", None))
              for name, array in members.items() if name.startswith(DETAIL_PREFIX)}
    return LatentFile(w=w, noise=noise or None, model_hash=made_for,
                      source=str(members.get("source", "")), detail=detail or None)


def _starts_like_a_zip(path: PathLike) -> bool:
    try:
        with open(path, "rb") as stream:
            return stream.read(4) == b"PK\x03\x04"
    except OSError:
        return False  # read_latent names what is wrong


def _npz_members(path: PathLike) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz``, each read without pickles and refused when it claims to inflate
    to more than ``MAX_LATENT_MEMBER_BYTES``."""
    members = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    raise UserFileError.at(path, f"not a latent file ({info.filename!r} is not an array)")
                if info.file_size > MAX_LATENT_MEMBER_BYTES:
                    raise UserFileError.at(path, f"{info.filename} is too large for a latent "
                                                 f"({info.file_size} bytes)")
                members[info.filename[:-4]] = load_npy(io.BytesIO(archive.read(info)))
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, NotImplementedError) as error:
        if isinstance(error, UserFileError):
            raise
        raise UserFileError.at(path, f"not a readable latent file ({_reason(error)})") from None
    return members


def _latent_rows(array: np.ndarray, model: LatentShape, path: PathLike) -> np.ndarray:
    """``fitted_latent``, with the words a W+ latent for another number of layers deserves."""
    if array.ndim == 2 and array.shape[1] == model.w_dim and array.shape[0] not in (1, model.num_ws):
        raise UserFileError.at(path, f"W+ latent has {array.shape[0]} rows; this model has "
                                     f"{model.num_ws} (one per style input)")
    return fitted_latent(array, model, path)


def _noise_map(array: np.ndarray, name: str, path: PathLike,
               shapes: dict[str, tuple[int, ...]] | None) -> np.ndarray:
    if array.ndim != 2 or array.dtype.kind != "f":
        raise UserFileError.at(path, f"{name} should be a 2-D float map, got {array.dtype} {array.shape}")
    layer = name[len(NOISE_PREFIX):]
    if shapes is not None and layer not in shapes:
        raise UserFileError.at(path, f"{name}: this model has no noise input at layer {layer!r}")
    if shapes is not None and tuple(array.shape) != tuple(shapes[layer]):
        raise UserFileError.at(path, f"{name} is {array.shape[1]} × {array.shape[0]}; this model's "
                                     f"layer {layer} needs {shapes[layer][1]} × {shapes[layer][0]}")
    if not np.all(np.isfinite(array)):
        raise UserFileError.at(path, f"{name} contains NaN or infinite values")
    return array.astype(np.float32)


def _detail_map(array: np.ndarray, name: str, path: PathLike, layers: Sequence[Any] | None) -> np.ndarray:
    if array.ndim != 3 or array.dtype.kind != "f":
        raise UserFileError.at(path, f"{name} should be a float map of (channels, height, width), "
                                     f"got {array.dtype} {array.shape}")
    layer = name[len(DETAIL_PREFIX):]
    if layers is not None:
        info = next((info for info in layers if info.name == layer), None)
        if info is None:
            raise UserFileError.at(path, f"{name}: this model has no layer {layer!r}")
        if tuple(array.shape) != (info.channels, info.height, info.width):
            raise UserFileError.at(path, f"{name} holds {array.shape[0]} channels of "
                                         f"{array.shape[2]} × {array.shape[1]}; this model's layer "
                                         f"{layer} has {info.channels} of {info.width} × {info.height}")
    if not np.all(np.isfinite(array)):
        raise UserFileError.at(path, f"{name} contains NaN or infinite values")
    return array.astype(np.float32)


def latent_to_text(latent: np.ndarray) -> str:
    """A latent as text for the clipboard (read back by ``latent_from_text``)."""
    return json.dumps({CLIPBOARD_LATENT_KEY: np.asarray(latent, dtype=np.float32).tolist()})


def latent_from_text(text: str, model: LatentShape, source: str = "clipboard") -> np.ndarray:
    try:
        array = np.asarray(parse_json(text)[CLIPBOARD_LATENT_KEY])
    except (ValueError, KeyError, TypeError) as error:  # SceneFormatError is a ValueError
        raise UserFileError.at(source, f"holds no latent ({_reason(error)})") from None
    return fitted_latent(array, model, source)


def fitted_latent(array: np.ndarray, model: LatentShape, source: PathLike) -> np.ndarray:
    """(w_dim,), (num_ws, w_dim), or either with a leading batch of 1, as float32; else refused."""
    if np.iscomplexobj(array):  # float32 would silently drop the imaginary part
        raise UserFileError.at(source, f"latent is not real-valued ({np.asarray(array).dtype})")
    try:
        with np.errstate(over="ignore"):  # values beyond float32 become inf, refused below
            array = np.asarray(array, dtype=np.float32)
    except (ValueError, TypeError) as error:
        raise UserFileError.at(source, f"latent is not numeric ({_reason(error)})") from None
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.shape not in ((model.w_dim,), (model.num_ws, model.w_dim)):
        raise UserFileError.at(source, f"latent shape {array.shape} does not fit this model (expected "
                                    f"({model.w_dim},) or ({model.num_ws}, {model.w_dim}))")
    if not np.all(np.isfinite(array)):
        raise UserFileError.at(source, "latent contains NaN or infinite values")
    return array


# ---- directions -----------------------------------------------------------------------------------

def read_direction(path: PathLike, model: "GeneratorBase",
                   model_hash: str = "") -> "Direction | StyleDirection":
    """A direction (``.npy`` + sidecar, ``.pt``, ``.csv``, or a style-space direction's ``.json``)
    that fits ``model``; with ``model_hash``, one made for another model is refused
    (``WrongModelError``)."""
    from ganinterface.engine.directions import (DirectionError, StyleDirection, check_style_fits,
                                                load_direction)

    try:
        direction = load_direction(path, w_dim=model.w_dim, num_ws=model.num_ws)
        if isinstance(direction, StyleDirection):
            check_style_fits(path, direction, model.style_sizes())
    except DirectionError as error:  # it names the file already (the .npy or its .json sidecar)
        raise UserFileError(str(error)) from None
    if model_hash:
        check_made_for(path, direction.model_hash, model_hash)
    return direction


def write_direction(path: PathLike, direction: "Direction | StyleDirection") -> tuple[Path, ...]:
    """NAME.npy + NAME.json (a style-space direction: NAME.json); returns the paths written."""
    from ganinterface.engine.directions import (DirectionError, StyleDirection, save_direction,
                                                save_style_direction)

    try:
        if isinstance(direction, StyleDirection):
            return (save_style_direction(path, direction),)
        return save_direction(path, direction)
    except DirectionError as error:
        raise UserFileError(str(error)) from None


# ---- raw arrays -----------------------------------------------------------------------------------

def write_array(path: PathLike, array: np.ndarray) -> None:
    """``array`` as float32 ``.npy`` (a latent, a raw render, a layer's activations)."""
    with writing(path), atomic_write(path) as handle:
        np.save(handle, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)


# ---- plumbing -------------------------------------------------------------------------------------

def _read_text(path: PathLike, kind: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserFileError.at(path, f"no such {kind} file") from None
    except IsADirectoryError:
        raise UserFileError.at(path, f"is a folder, not a {kind} file") from None
    except OSError as error:
        raise UserFileError.at(path, f"cannot read ({_reason(error)})") from None
    except UnicodeDecodeError:
        raise UserFileError.at(path, f"not a {kind} file (not UTF-8 text)") from None


def _parsed(path: PathLike, parse, text: str):
    try:
        return parse(text)
    except SceneFormatError as error:
        raise UserFileError.at(path, str(error)) from None


def _write_text(path: PathLike, text: str) -> None:
    with writing(path):
        atomic_write_text(path, text)


def check_writable(path: PathLike, *, folder: bool = False) -> None:
    """Refuse, before any work is done, an output that cannot be written: a part of its path that is
    a file, a folder where a file goes (or, with ``folder``, a file where a folder goes), or a
    folder the user may not write in (the nearest one that exists, when the rest is still to be
    made).  A file already there is not refused: outputs replace it."""
    path = Path(path)
    if _file_in_the_way(path) is not None:
        raise _through_a_file(path)
    if folder and path.exists() and not path.is_dir():
        raise UserFileError.at(path, "cannot write: it is a file, not a folder")
    if not folder and path.is_dir():
        raise UserFileError.at(path, "cannot write: it is a folder, not a file")
    nearest = next(parent for parent in path.parents if parent.exists())
    if not os.access(nearest, os.W_OK | os.X_OK):
        raise UserFileError.at(path, f"cannot write: no permission to write in {nearest}")


def make_folder_for(path: PathLike) -> None:
    """Create the folder an output file goes in (the command line's and batch jobs' habit)."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise _through_a_file(path) from None
    except OSError as error:
        raise UserFileError.at(path, f"cannot write ({_reason(error)})") from None


@contextlib.contextmanager
def writing(path: PathLike) -> Iterator[None]:
    """Around the writing of ``path``: an OSError becomes a UserFileError naming it."""
    try:
        yield
    except NotADirectoryError:
        raise _through_a_file(path) from None
    except FileNotFoundError:
        raise UserFileError.at(path, "cannot write: the folder does not exist") from None
    except OSError as error:
        raise UserFileError.at(path, f"cannot write ({_reason(error)})") from None


def _file_in_the_way(path: Path) -> Path | None:
    """The first part of ``path``'s folder that exists and is a file, if any."""
    return next((part for part in reversed(path.parents) if part.exists() and not part.is_dir()), None)


def _through_a_file(path: PathLike) -> UserFileError:
    blocker = _file_in_the_way(Path(path))
    return UserFileError.at(path, f"cannot write: {blocker or 'part of the path'} is a file, "
                                  "not a folder")


def _reason(error: BaseException) -> str:
    """An error's own words without Python's decoration (no errno, no repeated path)."""
    text = getattr(error, "strerror", None) or str(error)
    return text.splitlines()[0] if text else type(error).__name__
