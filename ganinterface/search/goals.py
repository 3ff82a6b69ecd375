"""What the shipped recipes are for: each goal's attribute, target state, region and aims."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class EditGoal:
    name: str  # "open mouth"
    attribute: str  # classifier attribute, e.g. "mouth_open"
    target: int  # class index the edit should reach
    region: str  # renderer label of the ground-truth box, e.g. "mouth_box"
    stem: str  # file name
    flip_aim: float  # the edit report's aims (issues 5 and 19); the search chooses by its margin to them
    locality_aim: float
    preservation_aim: float  # share of the other attributes kept
    mask_aim: float = 1.0  # largest share of the image the placed, dilated mask may cover
    artefact: str = ""  # "skin patch" or "seam" (search.artefacts), kept below ARTEFACT_AIM
    footprint: bool = False  # edit where the renderer draws the feature (a band's arc), not its box
    fill: bool = False  # removing the feature: also try copying the portrait's own features over it

    @property
    def file_name(self) -> str:
        return f"{self.stem}.json"


GOALS = (
    EditGoal("open mouth", "mouth_open", 1, "mouth_box", "open-mouth", 0.95, 0.92, 0.99),
    EditGoal("close mouth", "mouth_open", 0, "mouth_box", "close-mouth", 0.95, 0.92, 0.99,
             artefact="skin patch"),
    EditGoal("add hair band", "hair_band", 1, "band_box", "add-hair-band", 0.95, 0.90, 0.98,
             mask_aim=0.15, footprint=True),
    EditGoal("remove hair band", "hair_band", 0, "band_box", "remove-hair-band", 0.95, 0.90, 0.98,
             mask_aim=0.15, artefact="seam", footprint=True, fill=True),
)
