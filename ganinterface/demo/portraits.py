"""Procedural anime-style head-and-shoulders portraits with known attributes.

Every attribute is drawn from the distributions stated in the module constants below, and returned
as labels, so that a generator trained on these renders can be measured: did an edit open the mouth,
did it add a hair band, what else changed?

Drawing happens at ``SUPERSAMPLE`` times the requested size with anti-aliased OpenCV primitives and
is shrunk with area averaging, which gives clean edges at 128x64. Geometry is expressed in *units*
of the image width (the image is 1 unit wide and 2 units tall), so any size of 2:1 aspect renders
the same picture. Each image is a pure function of its seed: ``np.random.default_rng(seed)``.

Drawing order, back to front: background gradient, long hair behind the head, neck, clothing,
face, eyes, nose, mouth, hair over the scalp with fringe and side locks, hair band.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np

# ----------------------------------------------------------------------------------------------
# Stated distributions. Every categorical attribute is uniform over its palette unless noted.
# ----------------------------------------------------------------------------------------------
P_MOUTH_OPEN = 0.5
"""Probability that the mouth is open."""
MOUTH_OPENNESS_RANGE = (0.35, 1.0)
"""Open mouths have openness uniform in this range; closed mouths have openness 0."""
P_HAIR_BAND = 0.5
"""Probability of a hair band across the top of the hair."""
MIN_BAND_HAIR_CONTRAST = 120.0
"""A band colour is eligible only if its RGB distance from the hair colour exceeds this; the band
colour is uniform over the eligible ones."""

HAIR_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (38, 34, 48),
    "brown": (118, 72, 44),
    "blonde": (238, 205, 120),
    "red": (196, 52, 44),
    "blue": (64, 108, 206),
    "pink": (242, 150, 196),
}
FRINGES: tuple[str, ...] = ("straight", "spiky", "swept")
EYE_COLOURS: dict[str, tuple[int, int, int]] = {
    "blue": (50, 120, 235),
    "green": (40, 165, 80),
    "brown": (125, 72, 34),
    "red": (215, 35, 45),
    "purple": (140, 60, 205),
}
SKIN_TONES: dict[str, tuple[int, int, int]] = {
    "fair": (255, 230, 214),
    "light": (246, 208, 176),
    "tan": (212, 160, 116),
    "brown": (148, 98, 66),
}
BAND_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (226, 28, 44),
    "white": (248, 248, 248),
    "yellow": (252, 214, 36),
    "green": (36, 176, 84),
    "black": (22, 22, 28),
}
CLOTHING_COLOURS: dict[str, tuple[int, int, int]] = {
    "navy": (36, 48, 110),
    "white": (236, 236, 240),
    "crimson": (170, 30, 50),
    "forest": (40, 110, 60),
    "charcoal": (62, 62, 70),
    "mustard": (214, 168, 40),
}
BACKGROUNDS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    # name: (top colour, bottom colour) of a vertical gradient; the top is pulled towards the
    # bottom colour by a uniform(0, 0.35) amount per image
    "sky": ((150, 196, 245), (226, 238, 255)),
    "peach": ((250, 190, 150), (255, 232, 214)),
    "mint": ((150, 220, 190), (226, 248, 236)),
    "lavender": ((186, 166, 236), (236, 228, 252)),
    "grey": ((120, 122, 134), (196, 198, 206)),
    "cream": ((236, 222, 180), (252, 248, 232)),
}

HEAD_X_JITTER = 0.08
"""Head centre x is 0.5 + uniform(-j, j) of the image width (about +-5 pixels at width 64)."""
HEAD_Y_CENTRE = 0.82
HEAD_Y_JITTER = 0.08
"""Head centre y is HEAD_Y_CENTRE + uniform(-j, j) units of the width (0.82 units = 41% of height)."""
SCALE_RANGE = (0.9, 1.1)
"""Whole figure scale, uniform."""
TILT_DEGREES = 8.0
"""Head tilt uniform in +-this many degrees, about the neck."""

SUPERSAMPLE = 4
_NECK_PIVOT = (0.0, 0.30)  # head-local point the head tilts around

# Head-local geometry (units of the image width, at scale 1, y downwards, head centre = origin).
_MOUTH_CENTRE = (0.0, 0.255)
_MOUTH_HALF_WIDTH = 0.066
_BAND_CENTRE = (0.0, -0.05)
_BAND_RADII = (0.375, 0.31)
_BAND_ANGLES = (198.0, 342.0)
_BAND_THICKNESS = 0.068
_BOX_MARGIN = 0.016  # outline strokes and anti-aliasing reach this far beyond a shape's polygon


def _mouth_half_height(openness: float) -> float:
    return 0.03 + 0.05 * openness


@dataclass(frozen=True)
class Attributes:
    """Everything a portrait is drawn from; `labels_of` turns it into what callers see."""

    mouth_openness: float
    hair_band_colour: str | None
    hair_colour: str
    fringe: str
    eye_colour: str
    skin_tone: str
    clothing_colour: str
    background: str
    background_mix: float
    x: float
    y: float
    scale: float
    tilt: float


def sample_attributes(rng: np.random.Generator) -> Attributes:
    """Draws one portrait's attributes from the stated distributions (fixed order of draws)."""
    return _sample(rng)[0]


def with_and_without(seed: int, feature: str) -> tuple[Attributes, Attributes]:
    """The attributes of ``seed``'s portrait with and without ``feature`` ("hair_band" or
    "mouth_open"), everything else equal; the feature looks as the seed draws it (its band colour,
    its mouth's openness) whether the seed shows it or not."""
    attributes, openness, band = _sample(np.random.default_rng(seed))
    if feature == "hair_band":
        return (replace(attributes, hair_band_colour=band),
                replace(attributes, hair_band_colour=None))
    if feature == "mouth_open":
        return (replace(attributes, mouth_openness=openness),
                replace(attributes, mouth_openness=0.0))
    raise ValueError(f"no counterfactual for {feature!r}; features are hair_band, mouth_open")


def _sample(rng: np.random.Generator) -> tuple[Attributes, float, str]:
    """The attributes, and the mouth openness and band colour drawn whether they show or not."""
    mouth_open = rng.random() < P_MOUTH_OPEN
    openness = float(rng.uniform(*MOUTH_OPENNESS_RANGE))
    has_band = rng.random() < P_HAIR_BAND
    hair = _choice(rng, HAIR_COLOURS)
    eligible_bands = [name for name, colour in BAND_COLOURS.items()
                      if _distance(colour, HAIR_COLOURS[hair]) > MIN_BAND_HAIR_CONTRAST]
    band = eligible_bands[int(rng.integers(len(eligible_bands)))]
    attributes = Attributes(
        mouth_openness=openness if mouth_open else 0.0,
        hair_band_colour=band if has_band else None,
        hair_colour=hair,
        fringe=FRINGES[int(rng.integers(len(FRINGES)))],
        eye_colour=_choice(rng, EYE_COLOURS),
        skin_tone=_choice(rng, SKIN_TONES),
        clothing_colour=_choice(rng, CLOTHING_COLOURS),
        background=_choice(rng, BACKGROUNDS),
        background_mix=float(rng.uniform(0.0, 1.0)),
        x=float(0.5 + rng.uniform(-HEAD_X_JITTER, HEAD_X_JITTER)),
        y=float(HEAD_Y_CENTRE + rng.uniform(-HEAD_Y_JITTER, HEAD_Y_JITTER)),
        scale=float(rng.uniform(*SCALE_RANGE)),
        tilt=float(rng.uniform(-TILT_DEGREES, TILT_DEGREES)),
    )
    return attributes, openness, band


def render_portrait(seed: int, height: int = 128, width: int = 64) -> tuple[np.ndarray, dict[str, Any]]:
    """One portrait: uint8 (height, width, 3) RGB and its labels (see `labels_of`)."""
    attributes = sample_attributes(np.random.default_rng(seed))
    labels = labels_of(attributes)
    labels["seed"] = int(seed)
    return render_attributes(attributes, height, width), labels


def render_attributes(attributes: Attributes, height: int = 128, width: int = 64) -> np.ndarray:
    """Draws given attributes: with `dataclasses.replace` this makes counterfactual pairs, e.g. the
    same portrait with the mouth open and closed."""
    _check_size(height, width)
    return _Painter(attributes, height, width).paint()


def render_batch(seeds: Sequence[int], height: int = 128,
                 width: int = 64) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Portraits for many seeds: uint8 (N, height, width, 3) and one labels dict per image."""
    _check_size(height, width)
    images = np.empty((len(seeds), height, width, 3), np.uint8)
    labels = []
    for index, seed in enumerate(seeds):
        images[index], image_labels = render_portrait(seed, height, width)
        labels.append(image_labels)
    return images, labels


def labels_of(attributes: Attributes) -> dict[str, Any]:
    """Plain-JSON labels. Positions are normalised: x by width, y by height; tilt in degrees.

    ``mouth_box`` ([x0, y0, x1, y1], normalised) is the box a fully open mouth would fill, so it
    contains the mouth whether open or closed. ``band_box`` is where the hair band is, or would be.
    """
    pose = _Pose.of(attributes)
    widest_mouth = _mouth_outline(_mouth_half_height(MOUTH_OPENNESS_RANGE[1]))
    return {
        "mouth_open": attributes.mouth_openness > 0.0,
        "mouth_openness": round(attributes.mouth_openness, 4),
        "hair_band": attributes.hair_band_colour is not None,
        "hair_band_colour": attributes.hair_band_colour,
        "hair_colour": attributes.hair_colour,
        "fringe": attributes.fringe,
        "eye_colour": attributes.eye_colour,
        "skin_tone": attributes.skin_tone,
        "clothing_colour": attributes.clothing_colour,
        "background": attributes.background,
        "x": round(attributes.x, 4),
        "y": round(attributes.y / 2.0, 4),
        "scale": round(attributes.scale, 4),
        "tilt": round(attributes.tilt, 3),
        "mouth_box": _normalised_box(pose.head(widest_mouth), _BOX_MARGIN * pose.scale),
        "band_box": _normalised_box(pose.head(_band_polygon()), _BOX_MARGIN * pose.scale),
    }


def _check_size(height: int, width: int) -> None:
    if width < 8 or height != 2 * width:
        raise ValueError(f"portrait size must be 2:1 (height = 2 x width, width >= 8), got {width} × {height} px")


def _choice(rng: np.random.Generator, palette: dict[str, Any]) -> str:
    names = list(palette)
    return names[int(rng.integers(len(names)))]


def _distance(a: Sequence[int], b: Sequence[int]) -> float:
    return float(np.linalg.norm(np.subtract(a, b, dtype=np.float64)))


def _normalised_box(points: np.ndarray, margin: float) -> list[float]:
    """Bounding box of points given in units (x in [0, 1], y in [0, 2]), grown by margin units,
    normalised and clipped."""
    x0, y0 = points.min(axis=0) - margin
    x1, y1 = points.max(axis=0) + margin
    box = np.clip([x0, y0 / 2.0, x1, y1 / 2.0], 0.0, 1.0)
    return [round(float(value), 4) for value in box]


# ----------------------------------------------------------------------------------------------
# Geometry
# ----------------------------------------------------------------------------------------------
_ANGLES = np.linspace(0.0, 2.0 * np.pi, 48, endpoint=False)


@functools.lru_cache(maxsize=512)
def _ellipse(cx: float, cy: float, rx: float, ry: float,
             start: float = 0.0, end: float = 360.0, count: int = 0) -> np.ndarray:
    """Points (n, 2) on an ellipse; a partial arc from start to end degrees (0 = +x, 90 = +y).

    Cached (the same shapes recur in every portrait); callers must not modify the result.
    """
    if start == 0.0 and end == 360.0 and not count:
        angles = _ANGLES
    else:
        angles = np.radians(np.linspace(start, end, count or 24))
    return _frozen(np.stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)], axis=1))


def _frozen(points: np.ndarray) -> np.ndarray:
    points.flags.writeable = False
    return points


@functools.cache
def _face_outline() -> np.ndarray:
    """Round cranium above, cheeks narrowing to a soft pointed chin below."""
    sin, cos = np.sin(_ANGLES), np.cos(_ANGLES)
    lower = sin > 0
    x = 0.29 * cos * np.where(lower, 1.0 - 0.42 * sin ** 2, 1.0)
    y = np.where(lower, 0.40 * sin, 0.34 * sin)
    return _frozen(np.stack([x, y], axis=1))


def _mouth_outline(half_height: float) -> np.ndarray:
    """An open mouth: flat upper lip, rounded lower edge (a 'D' on its side)."""
    sin = np.sin(_ANGLES)
    x = _MOUTH_CENTRE[0] + _MOUTH_HALF_WIDTH * np.cos(_ANGLES)
    y = _MOUTH_CENTRE[1] + half_height * np.where(sin < 0, 0.3 * sin, sin)
    return np.stack([x, y], axis=1)


@functools.cache
def _band_polygon() -> np.ndarray:
    """The band: a thick arc over the crown, concentric with the top of the hair."""
    (cx, cy), (rx, ry), half = _BAND_CENTRE, _BAND_RADII, _BAND_THICKNESS / 2
    outer = _ellipse(cx, cy, rx + half, ry + half, *_BAND_ANGLES)
    inner = _ellipse(cx, cy, rx - half, ry - half, *_BAND_ANGLES)
    return _frozen(np.concatenate([outer, inner[::-1]]))


@functools.cache
def _fringe_edge(style: str) -> np.ndarray:
    """Lower edge of the fringe across the forehead, from right (+x) to left (-x)."""
    if style == "straight":
        xs = np.linspace(0.27, -0.27, 13)
        ys = -0.085 + 0.018 * (np.arange(13) % 2) - 0.02 * (xs / 0.27) ** 2
        return _frozen(np.stack([xs, ys], axis=1))
    if style == "spiky":
        xs = np.linspace(0.28, -0.28, 11)
        ys = np.where(np.arange(11) % 2 == 1, -0.02, -0.16)
        ys[[0, -1]] = -0.02
        return _frozen(np.stack([xs, ys], axis=1))
    # swept: a long lock from the left hairline sweeping down over the right brow
    return _frozen(np.array([
        [0.28, 0.02], [0.20, -0.03], [0.12, -0.06], [0.07, -0.10], [0.03, -0.07], [-0.04, -0.12],
        [-0.10, -0.17], [-0.14, -0.14], [-0.20, -0.20], [-0.27, -0.16], [-0.29, -0.08],
    ]))


@dataclass(frozen=True)
class _Pose:
    """Maps head-local and body-local units to image units (x in [0, 1], y in [0, 2])."""

    x: float
    y: float
    scale: float
    rotation: np.ndarray  # 2x2

    @classmethod
    def of(cls, attributes: Attributes) -> _Pose:
        angle = math.radians(attributes.tilt)
        rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        return cls(attributes.x, attributes.y, attributes.scale, rotation)

    def head(self, points: np.ndarray) -> np.ndarray:
        matrix, offset = self.head_affine()
        return np.asarray(points) @ matrix + offset

    def body(self, points: np.ndarray) -> np.ndarray:
        matrix, offset = self.body_affine()
        return np.asarray(points) @ matrix + offset

    def head_affine(self) -> tuple[np.ndarray, np.ndarray]:
        """(matrix, offset) with image = local @ matrix + offset: tilt about the neck, then body."""
        pivot = np.asarray(_NECK_PIVOT)
        turn = self.rotation.T
        return turn * self.scale, (pivot - pivot @ turn) * self.scale + (self.x, self.y)

    def body_affine(self) -> tuple[np.ndarray, np.ndarray]:
        return np.eye(2) * self.scale, np.array([self.x, self.y])


# ----------------------------------------------------------------------------------------------
# Painting
# ----------------------------------------------------------------------------------------------
def _shade(colour: Sequence[int], factor: float) -> tuple[int, int, int]:
    """Darker (factor < 1) or lighter (factor > 1, towards white) version of a colour."""
    if factor <= 1:
        return tuple(int(round(v * factor)) for v in colour)
    return tuple(min(255, int(round(v + (255 - v) * (factor - 1)))) for v in colour)


def _mix(a: Sequence[int], b: Sequence[int], t: float) -> tuple[int, int, int]:
    return tuple(int(round(u + (v - u) * t)) for u, v in zip(a, b))


class _Painter:
    def __init__(self, attributes: Attributes, height: int, width: int) -> None:
        self.a = attributes
        self.height, self.width = height, width
        self.pixels_per_unit = width * SUPERSAMPLE
        self.canvas = np.empty((height * SUPERSAMPLE, width * SUPERSAMPLE, 3), np.uint8)
        self.pose = _Pose.of(attributes)
        self.head = self._to_pixels(*self.pose.head_affine())
        self.body = self._to_pixels(*self.pose.body_affine())
        self.skin = SKIN_TONES[attributes.skin_tone]
        self.hair = HAIR_COLOURS[attributes.hair_colour]
        self.line = _shade(self.hair, 0.35) if attributes.hair_colour != "black" else (20, 16, 24)

    def paint(self) -> np.ndarray:
        self._background()
        self._hair_behind()
        self._neck_and_clothing()
        self._face()
        self._eyes()
        self._mouth()
        self._hair_front()
        if self.a.hair_band_colour is not None:
            self._band()
        return cv2.resize(self.canvas, (self.width, self.height), interpolation=cv2.INTER_AREA)

    # -- primitives (points already mapped to canvas pixels by self.head or self.body) --
    def _to_pixels(self, matrix: np.ndarray, offset: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        matrix, offset = matrix * self.pixels_per_unit, offset * self.pixels_per_unit

        def to_pixels(points: np.ndarray) -> np.ndarray:
            return np.rint(np.asarray(points) @ matrix + offset).astype(np.int32)
        return to_pixels

    def _fill(self, pixels: np.ndarray, colour: Sequence[int]) -> None:
        cv2.fillPoly(self.canvas, [pixels], colour, cv2.LINE_AA)

    def _stroke(self, pixels: np.ndarray, colour: Sequence[int], thickness: float,
                closed: bool = False) -> None:
        width = max(1, int(round(thickness * self.pose.scale * self.pixels_per_unit)))
        cv2.polylines(self.canvas, [pixels], closed, colour, width, cv2.LINE_AA)

    def _fill_outlined(self, points: np.ndarray, colour: Sequence[int], outline: Sequence[int],
                       thickness: float = 0.012) -> None:
        self._fill(points, colour)
        self._stroke(points, outline, thickness, closed=True)

    # -- parts --
    def _background(self) -> None:
        top, bottom = BACKGROUNDS[self.a.background]
        top = _mix(top, bottom, 0.35 * self.a.background_mix)
        ramp = np.linspace(0.0, 1.0, self.canvas.shape[0])[:, None]
        column = np.asarray(top, np.float64) + ramp * np.subtract(bottom, top, dtype=np.float64)
        column = np.round(column).astype(np.uint8)[:, None, :]
        # resizing a one-pixel-wide column is much faster than a broadcast copy
        cv2.resize(column, (self.canvas.shape[1], self.canvas.shape[0]), dst=self.canvas,
                   interpolation=cv2.INTER_NEAREST)

    def _hair_behind(self) -> None:
        crown = _ellipse(0.0, -0.1, 0.41, 0.42, 180.0, 360.0, 20)
        tips = np.array([[0.43, 0.20], [0.41, 0.48], [0.33, 0.56], [0.27, 0.47], [0.18, 0.53],
                         [-0.18, 0.53], [-0.27, 0.47], [-0.33, 0.56], [-0.41, 0.48], [-0.43, 0.20]])
        shape = self.head(np.concatenate([crown, tips]))
        self._fill_outlined(shape, _shade(self.hair, 0.78), self.line)

    def _neck_and_clothing(self) -> None:
        body = self.body
        neck = np.array([[-0.085, 0.2], [0.085, 0.2], [0.095, 0.66], [-0.095, 0.66]])
        self._fill(body(neck), self.skin)
        self._fill(body(_ellipse(0.0, 0.36, 0.11, 0.08)), _shade(self.skin, 0.8))  # chin shadow
        clothing = CLOTHING_COLOURS[self.a.clothing_colour]
        outline = _shade(clothing, 0.45)
        shoulders = np.concatenate([_ellipse(0.0, 1.25, 0.62, 0.64, 180.0, 360.0, 24),
                                    [[0.62, 2.0], [-0.62, 2.0]]])
        self._fill_outlined(body(shoulders), clothing, outline)
        collar = np.array([[-0.13, 0.60], [0.13, 0.60], [0.0, 0.84]])
        self._fill(body(collar), self.skin)
        trim = _shade(clothing, 1.35) if sum(clothing) < 450 else _shade(clothing, 0.7)
        self._stroke(body(np.array([[-0.19, 0.63], [0.0, 0.86], [0.19, 0.63]])), trim, 0.03)

    def _face(self) -> None:
        head = self.head
        self._fill_outlined(head(_face_outline()), self.skin, _shade(self.skin, 0.55))
        blush = _mix(self.skin, (240, 110, 120), 0.3)
        for side in (-1, 1):
            self._fill(head(_ellipse(side * 0.17, 0.17, 0.045, 0.02)), blush)
        self._stroke(head(np.array([[0.004, 0.145], [-0.006, 0.165]])), _shade(self.skin, 0.7), 0.014)

    def _eyes(self) -> None:
        head = self.head
        iris = EYE_COLOURS[self.a.eye_colour]
        lash = (28, 20, 30)
        for side in (-1, 1):
            ex, ey = side * 0.128, 0.06
            self._fill(head(_ellipse(ex, ey, 0.078, 0.09)), (252, 252, 252))
            self._fill(head(_ellipse(ex, ey + 0.01, 0.054, 0.08)), _shade(iris, 0.45))
            self._fill(head(_ellipse(ex, ey + 0.022, 0.045, 0.063)), iris)
            self._fill(head(_ellipse(ex, ey + 0.05, 0.03, 0.025)), _shade(iris, 1.45))
            self._fill(head(_ellipse(ex, ey + 0.012, 0.02, 0.034)), _shade(iris, 0.25))
            self._fill(head(_ellipse(ex + side * -0.02, ey - 0.025, 0.017, 0.017)), (255, 255, 255))
            self._fill(head(_ellipse(ex + side * 0.022, ey + 0.045, 0.008, 0.008)), (255, 255, 255))
            lid = _ellipse(ex, ey + 0.01, 0.088, 0.1, 196.0, 344.0, 14)  # runs left to right
            flick = [[ex + side * 0.1, ey - 0.045]]  # lashes flick up at the outer corner
            lid = np.concatenate([lid, flick] if side > 0 else [flick, lid])
            self._stroke(head(lid), lash, 0.028)
            lower_lid = _ellipse(ex, ey - 0.005, 0.07, 0.09, 60.0, 120.0, 8)
            self._stroke(head(lower_lid), _shade(self.skin, 0.5), 0.01)

    def _mouth(self) -> None:
        head = self.head
        openness = self.a.mouth_openness
        if openness == 0.0:
            cx, cy = _MOUTH_CENTRE
            xs = np.linspace(-0.045, 0.045, 9)
            smile = np.stack([cx + xs, cy + 0.012 * (1 - (xs / 0.045) ** 2)], axis=1)
            self._stroke(head(smile), (120, 44, 52), 0.02)
            return
        half_height = _mouth_half_height(openness)
        outline = _mouth_outline(half_height)
        self._fill(head(outline), (84, 18, 32))
        cx, cy = _MOUTH_CENTRE
        teeth = np.array([[cx - 0.036, cy - 0.22 * half_height], [cx + 0.036, cy - 0.22 * half_height],
                          [cx + 0.032, cy + 0.08 * half_height], [cx - 0.032, cy + 0.08 * half_height]])
        self._fill(head(teeth), (250, 250, 250))
        bottom = np.array([cx, cy + half_height])
        lower_half = outline[np.sin(_ANGLES) > 0.1]
        tongue = bottom + (lower_half - bottom) * np.array([0.62, 0.55])
        self._fill(head(tongue), (232, 112, 124))
        self._stroke(head(outline), (96, 30, 40), 0.012, closed=True)

    def _hair_front(self) -> None:
        head = self.head
        cap = _ellipse(0.0, -0.1, 0.36, 0.36, 180.0, 360.0, 24)
        right_lock = np.array([[0.36, -0.06], [0.35, 0.12], [0.33, 0.30], [0.29, 0.16], [0.26, 0.0]])
        left_lock = right_lock[::-1] * (-1, 1)
        shape = np.concatenate([cap, right_lock, _fringe_edge(self.a.fringe), left_lock])
        self._fill_outlined(head(shape), self.hair, self.line)
        # strand lines give the fringe some texture
        shade = _shade(self.hair, 0.72)
        for x in (-0.16, -0.05, 0.07, 0.18):
            self._stroke(head(np.array([[x * 0.6, -0.3], [x, -0.14]])), shade, 0.01)

    def _band(self) -> None:
        colour = BAND_COLOURS[self.a.hair_band_colour]
        outline = _shade(colour, 0.5) if colour != BAND_COLOURS["black"] else (80, 80, 90)
        self._fill_outlined(self.head(_band_polygon()), colour, outline, 0.01)
