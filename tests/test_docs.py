"""docs/file-formats.md describes every field the scene and recipe readers accept."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from ganinterface.engine import scene as sc
from ganinterface.engine.kinds import KINDS

DOC = (Path(__file__).parent.parent / "docs" / "file-formats.md").read_text(encoding="utf-8")
COMMON = {"enabled", "name"}  # described once for all edits


def section(heading: str) -> str:
    start = DOC.index(heading + "\n")
    following = re.search(r"\n#{2,3} ", DOC[start + len(heading):])
    return DOC[start:start + len(heading) + (following.start() if following else len(DOC))]


def table_fields(text: str) -> set[str]:
    """Field names in the first column of a table: `a` or `a`, `b`."""
    names = set()
    for line in text.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`(\w+)`", line.split("|")[1]))
    return names


def fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_edit_kind_and_field_is_documented(kind: str) -> None:
    assert table_fields(section(f"### `{kind}`")) == fields(KINDS[kind].edit_type) - COMMON
    assert all(f"`{name}`" in section("## Edits") for name in COMMON)


@pytest.mark.parametrize("heading, cls", [("## Scene", sc.Scene), ("## Masks", sc.Mask),
                                          ("## Anchors", sc.Anchor)])
def test_scene_mask_and_anchor_fields_are_documented(heading: str, cls: type) -> None:
    text = section(next(line for line in DOC.splitlines() if line.startswith(heading + " ")
                        or line == heading))
    documented = table_fields(text.split("Shapes have a `kind`")[0])
    assert documented == fields(cls)


@pytest.mark.parametrize("shape", [sc.Stroke, sc.Rect, sc.Bitmap])
def test_every_shape_field_is_documented(shape: type) -> None:
    row = next(line for line in section("## Masks").splitlines() if line.startswith(f"| `{shape.kind}` |"))
    assert set(re.findall(r"`(\w+)`", row.split("|")[2])) == fields(shape)


def test_the_quoted_error_is_the_one_the_reader_gives() -> None:
    quoted = re.search(r"\(`(scene\.edits\[2\][^`]*)`\)", DOC.replace("\n", " ")).group(1)
    edits = [{"kind": "feature", "layer": "b8.conv0", "channels": [0], "amount": 1.0,
              "mask": {"shapes": []}}] * 2
    edits.append({"kind": "feature", "layer": "b8.conv0", "channels": [0], "amount": 1.0,
                  "mask": {"shapes": [{"kind": "stroke", "points": [[0.5, 0.5]], "radius": "big"}]}})
    data = {**sc.Scene().to_dict(), "edits": edits}
    with pytest.raises(sc.SceneFormatError) as error:
        sc.Scene.from_dict(data)
    assert str(error.value) == quoted
