import re
import dataclasses
import json

import numpy as np
import pytest

from ganinterface.engine.kinds import (DirectionEdit, FeatureCopy, FeatureEdit, RegionResample,
                                       StyleMix)
from ganinterface.engine.scene import (Anchor, Bitmap, Mask, Recipe, Rect, Scene, SceneFormatError,
                                       Stroke)


def _rich_scene():
    mask = Mask((Stroke(((0.1, 0.2), (0.3, 0.4)), radius=0.07, softness=0.3),
                 Rect(0.2, 0.6, 0.5, 0.8, erase=True),
                 Bitmap(np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4))), dx=0.01)
    edits = (
        FeatureEdit("b32.conv1", (3, 17), mask, -2.5, anchor=Anchor("b32.conv0", (5,), 0.5, 0.7, 0.1,
                                                                     reach=0.15)),
        DirectionEdit(np.arange(8, dtype=np.float32), 1.5, first=2, last=5, name="smile"),
        StyleMix(seed=9, first=4),
        RegionResample("b16.conv0", mask, seed=3, enabled=False, keep_rest=True),
        FeatureCopy("b64.conv0", mask, scale=0.7, centre=(0.5, 0.36), offset=(0.0, -0.02),
                    amount=0.8, anchor=Anchor("b32.conv0", (1, 2), 0.5, 0.28), name="remove band",
                    keep_rest=True),
    )
    return Scene(checkpoint="x.pkl", seed=5, w=np.ones((6, 8), np.float32) * 0.25, class_index=2,
                 truncation_psi=0.7, noise_mode="random", noise_seed=4, edits=edits)


def test_scene_round_trips_exactly_through_json():
    scene = _rich_scene()
    again = Scene.from_json(scene.to_json())
    assert again == scene
    assert again.to_json() == scene.to_json()
    assert np.array_equal(again.w, scene.w) and again.w.dtype == np.float32
    assert again.edits[0].mask.shapes[2] == scene.edits[0].mask.shapes[2]


def test_keep_rest_is_written_only_where_set():
    data = json.loads(_rich_scene().to_json())
    assert [edit.get("keep_rest") for edit in data["edits"]] == [None, None, None, True, True]


def test_a_recipe_keeping_the_rest_sets_it_on_the_edits_that_can():
    recipe = Recipe(edits=_rich_scene().edits)
    assert [getattr(e, "keep_rest", None) for e in recipe.keeping_rest().edits] == [True, None, None,
                                                                                      True, True]
    assert [getattr(e, "keep_rest", None) for e in recipe.keeping_rest(False).edits] == [
        False, None, None, False, False]
    assert recipe.keeping_rest().keeping_rest(False).edits[4] == dataclasses.replace(
        recipe.edits[4], keep_rest=False)


def test_scene_is_immutable():
    scene = _rich_scene()
    with pytest.raises(Exception):
        scene.seed = 3
    with pytest.raises(ValueError):
        scene.w[0, 0] = 1.0


def test_fingerprint_changes_with_content():
    scene = _rich_scene()
    assert scene.fingerprint() != scene.replace(seed=6).fingerprint()
    assert scene.fingerprint() == Scene.from_json(scene.to_json()).fingerprint()


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(format="other"), "not a ganinterface.scene"),
    (lambda d: d.update(version=99), "unsupported"),
    (lambda d: d.update(seed="3"), "scene.seed"),
    (lambda d: d["edits"][0].update(kind="paint"), "edits[0].kind"),
    (lambda d: d["edits"][0].update(amount=float("nan")), "finite"),
    (lambda d: d["edits"][0].update(colour=3), "unknown field"),
    (lambda d: d["edits"][0].update(channels=[1, -2]), "negative"),
    (lambda d: d["edits"][1]["direction"].update(npy_base64="!!!"), "edits[1].direction"),
    (lambda d: d.update(noise_mode="loud"), "noise_mode"),
    (lambda d: d["edits"][0]["anchor"].update(reach=0), "anchor.reach must be positive"),
    (lambda d: d["edits"][4].update(centre=[0.5]), "edits[4].centre should be [x, y]"),
    (lambda d: d["edits"][4].update(offset=[0.1, "up"]), "edits[4].offset[1] should be int or float, got str"),
    (lambda d: d["edits"][4].update(scale=float("inf")), "edits[4].scale must be finite"),
    (lambda d: d["edits"][0].update(level=0), "edits[0].level must be positive, got 0"),
    (lambda d: d["edits"][0].update(level="loud"), "edits[0].level should be int or float, got str"),
    (lambda d: d["edits"][0].update(level=0.5, level_floor=-1), "edits[0].level_floor must be between 0 and 8"),
    (lambda d: d["edits"][0].update(level=0.5, level_floor=9), "edits[0].level_floor must be between 0 and 8"),
    (lambda d: d["edits"][4].update(keep_rest="yes"), "edits[4].keep_rest should be bool, got str"),
    (lambda d: d["edits"][1].update(keep_rest=True), "unknown field(s): keep_rest"),
])
def test_malformed_scene_names_the_problem(mutate, message):
    data = _rich_scene().to_dict()
    data = json.loads(json.dumps(data))
    mutate(data)
    with pytest.raises(SceneFormatError, match=re.escape(message)):
        Scene.from_dict(data)


def test_not_json_is_a_clear_error():
    with pytest.raises(SceneFormatError, match="not valid JSON"):
        Scene.from_json("{ nope")


def test_recipe_round_trip_and_scaling():
    scene = _rich_scene()
    recipe = Recipe(edits=scene.edits[:2], name="demo", provenance={"how": "test"})
    again = Recipe.from_json(recipe.to_json())
    assert again == recipe
    half = again.scaled(0.5)
    assert half.edits[0].amount == pytest.approx(-1.25)
    assert half.edits[1].amount == pytest.approx(0.75)
    applied = recipe.applied_to(Scene(seed=11))
    assert applied.seed == 11 and applied.edits == recipe.edits


def test_a_feature_edit_writes_its_level_only_when_it_has_one():
    plain = FeatureEdit("b32.conv1", (3, 17), Mask((Rect(0.1, 0.1, 0.4, 0.4),)), 1.5)
    levelled = FeatureEdit("b32.conv1", (3, 17), plain.mask, 1.5, level=0.25, level_floor=1.0)
    assert "level" not in json.loads(Recipe(edits=(plain,)).to_json())["edits"][0]
    written = json.loads(Recipe(edits=(levelled,)).to_json())["edits"][0]
    assert (written["level"], written["level_floor"]) == (0.25, 1.0)
    assert Recipe.from_json(Recipe(edits=(levelled, plain)).to_json()).edits == (levelled, plain)
    with pytest.raises(ValueError, match="level must be a positive number"):
        FeatureEdit("b32.conv1", (3,), plain.mask, 1.0, level=float("nan"))


def test_an_anchor_saved_without_reach_looks_everywhere():
    data = json.loads(_rich_scene().to_json())
    del data["edits"][0]["anchor"]["reach"]  # written before anchors had a reach
    assert Scene.from_dict(data).edits[0].anchor.reach is None


# ---- missing and unknown keys name the key, in the file's own terms ------------------------------

def _recipe_text(**fields) -> str:
    return json.dumps({"format": "ganinterface.recipe", "version": 1, **fields})


def test_a_recipe_without_edits_is_refused_naming_the_key():
    with pytest.raises(SceneFormatError, match=r"^the recipe is missing the field\(s\): edits$"):
        Recipe.from_json(_recipe_text(name="nothing"))
    assert Recipe.from_json(_recipe_text(edits=[])).edits == ()  # an empty list is a recipe


def test_unknown_recipe_keys_are_refused_naming_them():
    with pytest.raises(SceneFormatError, match=r"unknown field\(s\): colour, size"):
        Recipe.from_json(_recipe_text(edits=[], colour=3, size=1))


@pytest.mark.parametrize("edit, missing", [
    ({"kind": "feature", "channels": [1], "mask": {"shapes": []}, "amount": 1.0}, "layer"),
    ({"kind": "feature", "layer": "b8.conv1", "mask": {"shapes": []}}, "amount, channels"),
    ({"kind": "direction", "amount": 1.0}, "direction"),
    ({"kind": "style_mix", "first": 2}, "seed"),
])
def test_an_edit_missing_fields_names_them_without_python_internals(edit, missing):
    with pytest.raises(SceneFormatError) as refused:
        Recipe.from_json(_recipe_text(edits=[edit]))
    assert str(refused.value) == f"edits[0] is missing the field(s): {missing}"


def test_an_anchor_missing_its_place_names_the_field():
    edit = {"kind": "feature", "layer": "b8.conv1", "channels": [1], "mask": {"shapes": []},
            "amount": 1.0, "anchor": {"layer": "b8.conv1", "channels": [1], "x": 0.5}}
    with pytest.raises(SceneFormatError, match=r"^edits\[0\]\.anchor is missing the field\(s\): y$"):
        Recipe.from_json(_recipe_text(edits=[edit]))
