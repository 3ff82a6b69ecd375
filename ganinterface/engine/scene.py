"""The document a user edits: a Scene is immutable, plain data, and round-trips through JSON.

Every change is ``scene = dataclasses.replace(scene, ...)`` (or a command that does so); the GUI, the
command line and the tests all render Scenes through the same ``Renderer``.  Arrays (W/W+ latents,
direction vectors, bitmap masks) are stored inline as base64 ``.npy`` bytes so a Scene is one file.
The kinds of edit (their dataclasses, fields and what they do) are in ``engine.kinds``; this module
reads and writes any of them through the kinds' registry.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import math
import tokenize
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Union

import numpy as np

if TYPE_CHECKING:
    from ganinterface.engine.kinds import Edit, EditKind

SCENE_VERSION = 1
RECIPE_VERSION = 1


class SceneFormatError(ValueError):
    """A scene or recipe file is malformed; the message says what is wrong, in one line."""


Reader = Callable[[Any, str], Any]  # (JSON value, where it is for messages) -> the field's value


def parse_json(text: str) -> Any:
    """The JSON document in a file's text; anything wrong with the text is a SceneFormatError."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise SceneFormatError(f"not valid JSON ({error})") from None
    except RecursionError:
        raise SceneFormatError("not valid JSON (nested too deeply)") from None
    except ValueError:  # json refuses integers of thousands of digits
        raise SceneFormatError("not valid JSON (a number too long to read)") from None


# ---- arrays ----------------------------------------------------------------------------------------

def encode_array(array: np.ndarray) -> dict[str, str]:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return {"npy_base64": base64.b64encode(buffer.getvalue()).decode("ascii")}


NPY_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def load_npy(stream: BinaryIO) -> np.ndarray:
    """The array in ``.npy`` bytes, without pickles. Whatever is wrong with the bytes is a
    ValueError, and a header that claims more data than follows it is refused before anything is
    allocated (numpy would allocate what the header says first)."""
    try:
        version = np.lib.format.read_magic(stream)
        if version not in NPY_READERS:
            raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported")
        shape, _fortran_order, dtype = NPY_READERS[version](stream)
        start = stream.tell()
        available = stream.seek(0, io.SEEK_END) - start
        if math.prod(shape) * dtype.itemsize > available:
            raise ValueError(f"the header claims a {dtype} array of shape {shape}, more than the "
                             f"{available} bytes that follow it")
        stream.seek(0)
        return np.load(stream, allow_pickle=False)
    except (SyntaxError, EOFError, tokenize.TokenError) as error:  # numpy parses the header as Python
        raise ValueError(f"damaged .npy header ({type(error).__name__})") from None


def decode_array(data: Any, what: str) -> np.ndarray:
    if not isinstance(data, dict) or "npy_base64" not in data:
        raise SceneFormatError(f"{what} should be an object with 'npy_base64'")
    try:
        raw = base64.b64decode(data["npy_base64"], validate=True)
        array = load_npy(io.BytesIO(raw))
    except Exception as error:  # binascii.Error, ValueError, OSError...
        raise SceneFormatError(f"{what} is not a valid base64 .npy array ({error})") from None
    if array.dtype.kind not in "fiu":
        raise SceneFormatError(f"{what} has non-numeric dtype {array.dtype}")
    with np.errstate(over="ignore"):  # values beyond float32 become inf, refused below
        array = array.astype(np.float32)
    if not np.all(np.isfinite(array)):
        raise SceneFormatError(f"{what} contains NaN or infinite values")
    return array


def frozen_array(array: Any) -> np.ndarray:
    """A read-only float32 copy of ``array``; one made here already is kept as it is (a scene
    changed in another field holds the same latent)."""
    if (isinstance(array, np.ndarray) and array.dtype == np.float32 and array.flags.owndata
            and not array.flags.writeable):
        return array
    out = np.array(array, dtype=np.float32, copy=True)
    out.setflags(write=False)
    return out


# ---- masks -----------------------------------------------------------------------------------------
# Coordinates are normalised: x in [0, 1] from left to right, y in [0, 1] from top to bottom, so one
# mask fits any layer resolution and any image aspect.  Radii are fractions of the image height.

@dataclasses.dataclass(frozen=True)
class Stroke:
    points: tuple[tuple[float, float], ...]
    radius: float = 0.05
    softness: float = 0.5  # 0 = hard edge, 1 = fully feathered
    erase: bool = False
    kind: ClassVar[str] = "stroke"


@dataclasses.dataclass(frozen=True)
class Rect:
    x0: float
    y0: float
    x1: float
    y1: float
    softness: float = 0.0
    erase: bool = False
    kind: ClassVar[str] = "rect"


@dataclasses.dataclass(frozen=True, eq=False)
class Bitmap:
    """A soft mask image in [0, 1] covering the whole frame, resampled to each layer's size."""

    values: np.ndarray
    erase: bool = False
    kind: ClassVar[str] = "bitmap"

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", frozen_array(self.values))
        if self.values.ndim != 2:
            raise SceneFormatError(f"bitmap mask must be 2-D, got shape {self.values.shape}")

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Bitmap) and self.erase == other.erase
                and np.array_equal(self.values, other.values))

    def __hash__(self) -> int:
        return hash((self.values.tobytes(), self.values.shape, self.erase))


Shape = Union[Stroke, Rect, Bitmap]


@dataclasses.dataclass(frozen=True)
class Mask:
    """Shapes painted in order; an ``erase`` shape removes what earlier ones painted."""

    shapes: tuple[Shape, ...] = ()
    # Placement applied to every shape: scale about (cx, cy), then shift by (dx, dy).
    # This is how an anchored edit follows the feature on another portrait.
    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0
    cx: float = 0.5
    cy: float = 0.5

    def is_empty(self) -> bool:
        return not self.shapes

    def moved(self, dx: float, dy: float, scale: float = 1.0, cx: float | None = None,
              cy: float | None = None) -> "Mask":
        return dataclasses.replace(self, dx=dx, dy=dy, scale=scale,
                                   cx=self.cx if cx is None else cx,
                                   cy=self.cy if cy is None else cy)

    def with_shape(self, shape: Shape) -> "Mask":
        return dataclasses.replace(self, shapes=self.shapes + (shape,))


# ---- anchors ---------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Anchor:
    """The activation peak of ``channels`` at ``layer`` locates the feature an edit targets.

    ``x``, ``y`` (normalised) and ``spread`` are where the peak was, and how wide, on the portrait the
    edit was drawn on; on another portrait the mask moves by the peak's displacement (and scales by
    the ratio of spreads when ``follow_scale``).  With ``reach``, the peak is looked for only within
    that many image heights of (x, y), so a brighter spot elsewhere (a chin line below a mouth)
    cannot carry the mask away.
    """

    layer: str
    channels: tuple[int, ...]
    x: float
    y: float
    spread: float = 0.0
    follow_scale: bool = False
    reach: float | None = None


# ---- scene -----------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class Scene:
    """Everything needed to reproduce one image, headless or in the window.

    The latent is the ``seed`` (z drawn as NVlabs' gen_images.py does) unless ``w`` is given:
    (w_dim,) is a W latent, (num_ws, w_dim) a W+ latent; a given ``w`` is used as is (no truncation).
    ``noise_maps`` (layer name -> (h, w) map, e.g. from a projection) replace those layers' stored
    noise in noise mode "const".  ``detail_maps`` (layer name -> (channels, h, w)) are added to
    those layers' outputs before any edit: the fine detail a projection found that its latent does
    not draw (``engine.projection``).
    """

    checkpoint: str | None = None  # None: the built-in portrait model
    seed: int = 0
    w: np.ndarray | None = None
    noise_maps: dict[str, np.ndarray] | None = None
    detail_maps: dict[str, np.ndarray] | None = None
    class_index: int | None = None
    truncation_psi: float = 1.0
    truncation_cutoff: int | None = None
    noise_mode: str = "const"
    noise_seed: int = 0
    edits: tuple[Edit, ...] = ()

    def __post_init__(self) -> None:
        if self.w is not None:
            object.__setattr__(self, "w", frozen_array(self.w))
        for field in ("noise_maps", "detail_maps"):
            maps = getattr(self, field)
            if maps is not None:
                object.__setattr__(self, field, {str(name): frozen_array(value)
                                                 for name, value in maps.items()})
        object.__setattr__(self, "edits", tuple(self.edits))

    def replace(self, **changes: Any) -> "Scene":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return scene_to_dict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> "Scene":
        return scene_from_dict(data)

    @classmethod
    def from_json(cls, text: str) -> "Scene":
        return scene_from_dict(parse_json(text))

    def fingerprint(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scene) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.fingerprint())


# ---- serialisation ---------------------------------------------------------------------------------

def _shape_to_dict(shape: Shape) -> dict[str, Any]:
    if isinstance(shape, Bitmap):
        return {"kind": "bitmap", "values": encode_array(shape.values), "erase": shape.erase}
    data = dataclasses.asdict(shape)
    if isinstance(shape, Stroke):
        data["points"] = [list(p) for p in shape.points]
    data["kind"] = shape.kind
    return data


def _mask_to_dict(mask: Mask) -> dict[str, Any]:
    data = {f.name: getattr(mask, f.name) for f in dataclasses.fields(mask) if f.name != "shapes"}
    data["shapes"] = [_shape_to_dict(s) for s in mask.shapes]
    return data


def edit_to_dict(edit: Edit) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": edit.kind}
    for f in dataclasses.fields(edit):
        value = getattr(edit, f.name)
        if f.metadata.get("omit_when_default") and value == f.default:
            continue
        if isinstance(value, Mask):
            value = _mask_to_dict(value)
        elif isinstance(value, Anchor):
            value = dataclasses.asdict(value)
            value["channels"] = list(value["channels"])
        elif isinstance(value, np.ndarray):
            value = encode_array(value)
        elif isinstance(value, tuple):
            value = list(value)
        data[f.name] = value
    return data


def scene_to_dict(scene: Scene) -> dict[str, Any]:
    data: dict[str, Any] = {"format": "ganinterface.scene", "version": SCENE_VERSION}
    for f in dataclasses.fields(scene):
        value = getattr(scene, f.name)
        if f.name == "edits":
            value = [edit_to_dict(e) for e in value]
        elif f.name in ("noise_maps", "detail_maps"):
            if value is None:
                continue  # most scenes have none; files stay as they were
            value = {name: encode_array(array) for name, array in sorted(value.items())}
        elif isinstance(value, np.ndarray):
            value = encode_array(value)
        data[f.name] = value
    return data


def _require(data: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if isinstance(data, bool) and kind in (int, float, (int, float)):
        raise SceneFormatError(f"{what} should be a number, got {data!r}")
    if not isinstance(data, kind):
        name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise SceneFormatError(f"{what} should be {name}, got {type(data).__name__}")
    return data


def read_number(data: Any, what: str) -> float:
    value = float(_require(data, (int, float), what))
    if not math.isfinite(value):
        raise SceneFormatError(f"{what} must be finite, got {value}")
    return value


def _build(cls: type, data: dict[str, Any], what: str, converters: dict[str, Any]) -> Any:
    fields = dataclasses.fields(cls)
    _check_keys(data, {f.name for f in fields} | {"kind"}, _required(fields), what)
    kwargs = {}
    for key, value in data.items():
        if key == "kind":
            continue
        convert = converters.get(key)
        kwargs[key] = convert(value, f"{what}.{key}") if convert else value
    return cls(**kwargs)


def _required(fields: Sequence[dataclasses.Field]) -> set[str]:
    return {f.name for f in fields if f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING}


def _check_keys(data: dict[str, Any], allowed: set[str], required: set[str], what: str) -> None:
    """Unknown and missing keys are errors naming them, in the file's own terms."""
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise SceneFormatError(f"{what} has unknown field(s): {', '.join(unknown)}")
    missing = sorted(required - set(data))
    if missing:
        raise SceneFormatError(f"{what} is missing the field(s): {', '.join(missing)}")


def _points(value: Any, what: str) -> tuple[tuple[float, float], ...]:
    _require(value, list, what)
    points = []
    for i, point in enumerate(value):
        if not isinstance(point, (list, tuple)) or len(point) != 2:
            raise SceneFormatError(f"{what}[{i}] should be [x, y]")
        where = f"{what}[{i}]"
        points.append((read_number(point[0], where), read_number(point[1], where)))
    return tuple(points)


def read_pair(value: Any, what: str) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise SceneFormatError(f"{what} should be [x, y]")
    return read_number(value[0], f"{what}[0]"), read_number(value[1], f"{what}[1]")


def read_bool(value: Any, what: str) -> bool:
    return _require(value, bool, what)


def read_str(value: Any, what: str) -> str:
    return _require(value, str, what)


def read_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SceneFormatError(f"{what} should be an integer, got {value!r}")
    return value


def optional(read: Reader) -> Reader:
    return lambda value, what: None if value is None else read(value, what)


def read_channels(value: Any, what: str) -> tuple[int, ...]:
    _require(value, list, what)
    channels = tuple(read_int(c, f"{what}[]") for c in value)
    if any(c < 0 for c in channels):
        raise SceneFormatError(f"{what} has a negative channel index")
    return channels


_SHAPE_CONVERTERS = {
    "stroke": {"points": _points, "radius": read_number, "softness": read_number, "erase": read_bool},
    "rect": {"x0": read_number, "y0": read_number, "x1": read_number, "y1": read_number,
             "softness": read_number, "erase": read_bool},
    "bitmap": {"values": decode_array, "erase": read_bool},
}
_SHAPE_TYPES = {"stroke": Stroke, "rect": Rect, "bitmap": Bitmap}


def _shape(value: Any, what: str) -> Shape:
    _require(value, dict, what)
    kind = value.get("kind")
    if not isinstance(kind, str) or kind not in _SHAPE_TYPES:
        raise SceneFormatError(f"{what}.kind must be one of {sorted(_SHAPE_TYPES)}, got {kind!r}")
    return _build(_SHAPE_TYPES[kind], value, what, _SHAPE_CONVERTERS[kind])


def read_mask(value: Any, what: str) -> Mask:
    _require(value, dict, what)
    shapes = _require(value.get("shapes", []), list, f"{what}.shapes")
    data = dict(value)
    data["shapes"] = tuple(_shape(s, f"{what}.shapes[{i}]") for i, s in enumerate(shapes))
    converters = {k: read_number for k in ("dx", "dy", "scale", "cx", "cy")}
    return _build(Mask, data, what, converters)


def read_positive(value: Any, what: str) -> float:
    number = read_number(value, what)
    if number <= 0:
        raise SceneFormatError(f"{what} must be positive, got {number}")
    return number


def read_anchor(value: Any, what: str) -> Anchor:
    _require(value, dict, what)
    converters = {"layer": read_str, "channels": read_channels, "x": read_number, "y": read_number,
                  "spread": read_number, "follow_scale": read_bool, "reach": optional(read_positive)}
    return _build(Anchor, value, what, converters)


_EVERY_EDIT: dict[str, Reader] = {"enabled": read_bool, "name": read_str}  # fields all kinds have


def _edit_kinds() -> dict[str, EditKind]:
    # imported when first used: the kinds' modules are built on this module's Mask, Anchor and readers
    from ganinterface.engine.kinds import KINDS

    return KINDS


def edit_from_dict(value: Any, what: str = "edit") -> Edit:
    _require(value, dict, what)
    kinds = _edit_kinds()
    name = value.get("kind")
    if not isinstance(name, str) or name not in kinds:
        raise SceneFormatError(f"{what}.kind must be one of {sorted(kinds)}, got {name!r}")
    kind = kinds[name]
    return _build(kind.edit_type, value, what, {**_EVERY_EDIT, **kind.readers})


def edits_from_list(value: Any, what: str = "edits") -> tuple[Edit, ...]:
    _require(value, list, what)
    return tuple(edit_from_dict(e, f"{what}[{i}]") for i, e in enumerate(value))


def _check_header(data: Any, fmt: str, version: int) -> None:
    _require(data, dict, "the file")
    if data.get("format") != fmt:
        raise SceneFormatError(f"not a {fmt} file (format field is {data.get('format')!r})")
    got = data.get("version")
    if not isinstance(got, int) or got < 1 or got > version:
        raise SceneFormatError(f"unsupported {fmt} version {got!r} (this program reads up to {version})")


def read_noise_maps(value: Any, what: str) -> dict[str, np.ndarray]:
    _require(value, dict, what)
    maps = {name: decode_array(array, f"{what}[{name!r}]") for name, array in value.items()}
    for name, array in maps.items():
        if array.ndim != 2:
            raise SceneFormatError(f"{what}[{name!r}] should be a 2-D map, got shape {array.shape}")
    return maps


def read_detail_maps(value: Any, what: str) -> dict[str, np.ndarray]:
    _require(value, dict, what)
    maps = {name: decode_array(array, f"{what}[{name!r}]") for name, array in value.items()}
    for name, array in maps.items():
        if array.ndim != 3:
            raise SceneFormatError(f"{what}[{name!r}] should hold (channels, height, width), "
                                   f"got shape {array.shape}")
    return maps


def scene_from_dict(data: Any) -> Scene:
    _check_header(data, "ganinterface.scene", SCENE_VERSION)
    body = {k: v for k, v in data.items() if k not in ("format", "version")}
    converters = {
        "checkpoint": optional(read_str), "seed": read_int, "w": optional(decode_array),
        "noise_maps": optional(read_noise_maps), "detail_maps": optional(read_detail_maps),
        "class_index": optional(read_int), "truncation_psi": read_number,
        "truncation_cutoff": optional(read_int), "noise_mode": read_str, "noise_seed": read_int,
        "edits": edits_from_list,
    }
    scene = _build(Scene, body, "scene", converters)
    if scene.noise_mode not in ("const", "random", "none"):
        raise SceneFormatError(f"scene.noise_mode must be const, random or none, got {scene.noise_mode!r}")
    return scene


# ---- recipes ---------------------------------------------------------------------------------------

RECIPE_KEYS = {"format", "version", "name", "model_hash", "provenance", "edits"}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Edits without a latent: found once, applied to any seed."""

    edits: tuple[Edit, ...]
    name: str = ""
    model_hash: str = ""  # sha256 of the generator weights it was made for ("" = any)
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> str:
        data = {"format": "ganinterface.recipe", "version": RECIPE_VERSION, "name": self.name,
                "model_hash": self.model_hash, "provenance": self.provenance,
                "edits": [edit_to_dict(e) for e in self.edits]}
        return json.dumps(data, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Recipe":
        data = parse_json(text)
        _check_header(data, "ganinterface.recipe", RECIPE_VERSION)
        _check_keys(data, RECIPE_KEYS, {"edits"}, "the recipe")
        return cls(edits=edits_from_list(data["edits"]),
                   name=read_str(data.get("name", ""), "name"),
                   model_hash=read_str(data.get("model_hash", ""), "model_hash"),
                   provenance=_require(data.get("provenance", {}), dict, "provenance"))

    def scaled(self, factor: float) -> "Recipe":
        """The same recipe with every amount multiplied (the strength of an animated recipe)."""
        kinds = _edit_kinds()
        edits = tuple(kinds[e.kind].scaled(e, factor) for e in self.edits)
        return dataclasses.replace(self, edits=edits)

    def keeping_rest(self, keep: bool = True) -> "Recipe":
        """The same recipe with every edit that can keep the rest of the picture doing so (or not:
        ``keep=False``)."""
        kinds = _edit_kinds()
        edits = tuple(dataclasses.replace(e, keep_rest=keep) if kinds[e.kind].can_keep_rest else e
                      for e in self.edits)
        return dataclasses.replace(self, edits=edits)

    def applied_to(self, scene: Scene) -> Scene:
        return scene.replace(edits=tuple(scene.edits) + tuple(self.edits))

