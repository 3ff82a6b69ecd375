"""The crop a user chooses on a picture before projecting it: a box locked to the model's aspect,
moved and resized inside the picture.  Qt-free: ``ui.projection_dialog`` draws the frame and turns
drags and wheel turns into these calls; ``projection.crop_to_aspect`` crops ``box()``.

Coordinates are picture pixels (x to the right, y down) as floats while the user drags, so that
slow drags add up; ``box()`` rounds them to whole pixels with the aspect kept within a pixel.
"""

from __future__ import annotations

import dataclasses

from ganinterface.engine.projection import ProjectionError

SMALLEST_SIDE = 16  # pixels of the box's shorter side, unless the picture allows no more

Point = tuple[float, float]


@dataclasses.dataclass(frozen=True)
class CropFrame:
    picture_width: int
    picture_height: int
    aspect: tuple[int, int]  # (width, height) of the model's images
    left: float
    top: float
    width: float  # the height follows from the aspect

    @classmethod
    def largest(cls, picture_width: int, picture_height: int, aspect: tuple[int, int]) -> CropFrame:
        """The default: the largest box with the aspect, centred."""
        if picture_width < 1 or picture_height < 1:
            raise ProjectionError(f"the picture is empty ({picture_width} × {picture_height} px)")
        frame = cls(picture_width, picture_height, aspect, 0.0, 0.0, 0.0)
        width = frame._widest()
        return dataclasses.replace(frame, width=width, left=(picture_width - width) / 2,
                                   top=(picture_height - width * frame._tallness) / 2)

    @property
    def height(self) -> float:
        return self.width * self._tallness

    @property
    def _tallness(self) -> float:
        return self.aspect[1] / self.aspect[0]

    def _widest(self) -> float:
        return min(float(self.picture_width), self.picture_height / self._tallness)

    def _narrowest(self) -> float:
        shorter_side_per_width = min(1.0, self._tallness)
        return min(self._widest(), SMALLEST_SIDE / shorter_side_per_width)

    def contains(self, point: Point) -> bool:
        x, y = point
        return self.left <= x <= self.left + self.width and self.top <= y <= self.top + self.height

    def corners(self) -> dict[str, Point]:
        """"top-left", "top-right", "bottom-left", "bottom-right" -> the corner's point."""
        right, bottom = self.left + self.width, self.top + self.height
        return {"top-left": (self.left, self.top), "top-right": (right, self.top),
                "bottom-left": (self.left, bottom), "bottom-right": (right, bottom)}

    def opposite(self, corner: str) -> Point:
        vertical, horizontal = corner.split("-")
        flipped = {"top": "bottom", "bottom": "top", "left": "right", "right": "left"}
        return self.corners()[f"{flipped[vertical]}-{flipped[horizontal]}"]

    def moved(self, dx: float, dy: float) -> CropFrame:
        """Shifted by (dx, dy), stopping at the picture's edges."""
        return self._placed(self.left + dx, self.top + dy, self.width)

    def centred_on(self, point: Point) -> CropFrame:
        x, y = point
        return self._placed(x - self.width / 2, y - self.height / 2, self.width)

    def scaled(self, factor: float, about: Point | None = None) -> CropFrame:
        """``factor`` times as wide (within the smallest and the largest box), ``about`` (default
        the centre) staying where it is in the box as far as the picture's edges allow."""
        x, y = about if about is not None else (self.left + self.width / 2, self.top + self.height / 2)
        width = min(max(self.width * factor, self._narrowest()), self._widest())
        ratio = width / self.width
        return self._placed(x - (x - self.left) * ratio, y - (y - self.top) * ratio, width)

    def resized(self, anchor: Point, point: Point) -> CropFrame:
        """The box spanned from ``anchor`` (the corner that stays) towards ``point`` (the corner
        dragged): as large as the larger of the point's two distances asks, with the aspect, and
        no larger than fits in the picture on that side of the anchor."""
        ax, ay = anchor
        x, y = point
        narrowest = self._narrowest()
        # dragged across the anchor towards an edge with no room: the box stays on the other side
        right = x >= ax if min(ax, self.picture_width - ax) >= narrowest else ax < narrowest
        down_room = narrowest * self._tallness
        down = y >= ay if min(ay, self.picture_height - ay) >= down_room else ay < down_room
        room_x = self.picture_width - ax if right else ax
        room_y = self.picture_height - ay if down else ay
        width = max(abs(x - ax), abs(y - ay) / self._tallness)
        width = min(max(width, narrowest), room_x, room_y / self._tallness)
        height = width * self._tallness
        return self._placed(ax if right else ax - width, ay if down else ay - height, width)

    def _placed(self, left: float, top: float, width: float) -> CropFrame:
        height = width * self._tallness
        left = min(max(left, 0.0), self.picture_width - width)
        top = min(max(top, 0.0), self.picture_height - height)
        return dataclasses.replace(self, left=left, top=top, width=width)

    def box(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) in whole pixels: the height within half a pixel of the
        width's (or the width of the height's, where the height is the picture's)."""
        aspect_w, aspect_h = self.aspect
        width = min(max(1, round(self.width)), self.picture_width)
        height = max(1, round(width * aspect_h / aspect_w))
        if height > self.picture_height:
            height = self.picture_height
            width = min(max(1, round(height * aspect_w / aspect_h)), self.picture_width)
        left = min(max(round(self.left), 0), self.picture_width - width)
        top = min(max(round(self.top), 0), self.picture_height - height)
        return left, top, left + width, top + height
