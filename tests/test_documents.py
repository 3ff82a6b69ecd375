"""What the window's documents read, write and decide, without a window."""

from __future__ import annotations

import numpy as np
import pytest

from ganinterface.engine.scene import FeatureEdit, Mask, Recipe, Rect, Scene, SceneFormatError
from ganinterface.export.images import save_png
from ganinterface.ui.documents import (failure, latent_as_text, latent_from_text, read_recipe,
                                       read_scene, scene_for_model)
from ganinterface.ui.latent_panel import ModelShape
from ganinterface.ui.model_loading import LoadedModel

EDIT = FeatureEdit("b8.conv1", (0, 2), Mask((Rect(0.1, 0.2, 0.3, 0.4),)), 1.5, name="mouth")


def model(checkpoint: str | None, c_dim: int = 0) -> LoadedModel:
    shape = ModelShape("m", z_dim=8, w_dim=8, num_ws=4, c_dim=c_dim, layers=(), height=8, width=8)
    return LoadedModel(renderer=None, shape=shape, checkpoint=checkpoint)


def test_a_scene_reads_from_json_and_from_a_png_that_carries_one(tmp_path):
    scene = Scene(seed=5, truncation_psi=0.7, edits=(EDIT,))
    (tmp_path / "s.json").write_text(scene.to_json())
    image = np.zeros((4, 2, 3), np.uint8)
    save_png(tmp_path / "s.png", image, scene)
    save_png(tmp_path / "plain.png", image)
    assert read_scene(tmp_path / "s.json") == scene
    assert read_scene(tmp_path / "s.png") == scene
    with pytest.raises(SceneFormatError, match="carries no ganinterface scene"):
        read_scene(tmp_path / "plain.png")


def test_a_recipe_for_another_model_is_refused_naming_both(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(Recipe(edits=(EDIT,), model_hash="a" * 64).to_json())
    assert read_recipe(path, "a" * 64).edits == (EDIT,)
    with pytest.raises(SceneFormatError) as refused:
        read_recipe(path, "b" * 64)
    assert str(refused.value) == f"made for another model ({'a' * 12}…), not this one ({'b' * 12}…)"
    path.write_text(Recipe(edits=(EDIT,)).to_json())  # made for no model in particular
    assert read_recipe(path, "b" * 64).edits == (EDIT,)


def test_a_latent_goes_through_clipboard_text_unchanged():
    latent = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    np.testing.assert_array_equal(latent_from_text(latent_as_text(latent)), latent)
    for text in ("not a latent", '{"other": 1}', "[1, 2]"):
        with pytest.raises((ValueError, KeyError, TypeError)):
            latent_from_text(text)


def test_a_failure_is_one_line_naming_the_file(tmp_path):
    missing = tmp_path / "gone" / "x.json"
    try:
        missing.read_text()
    except OSError as error:
        assert failure(missing, error) == "x.json: No such file or directory"
    assert failure(missing, SceneFormatError("edits[0]: no kind")) == "x.json: edits[0]: no kind"


def test_another_model_takes_the_scene_without_its_latent_and_edits():
    scene = Scene(checkpoint="a.pkl", seed=4, w=np.ones(8, np.float32), edits=(EDIT,))
    assert scene_for_model(scene, model("a.pkl")) is scene
    assert scene_for_model(scene, model("b.pkl")) == Scene(checkpoint="b.pkl", seed=4)


@pytest.mark.parametrize("class_index, c_dim, fitted", [(None, 0, None), (3, 0, None), (None, 4, 0),
                                                        (2, 4, 2), (4, 4, 0), (-1, 4, 0)])
def test_the_class_fits_the_model(class_index, c_dim, fitted):
    scene = Scene(class_index=class_index)
    assert scene_for_model(scene, model(None, c_dim)).class_index == fitted
