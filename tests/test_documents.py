"""What the window's documents decide, without a window (their files: tests/test_userfiles.py)."""

from __future__ import annotations

import numpy as np
import pytest

from ganinterface.engine.kinds import FeatureEdit
from ganinterface.engine.scene import Mask, Rect, Scene
from ganinterface.ui.documents import scene_for_model
from ganinterface.ui.latent_panel import ModelShape
from ganinterface.ui.model_loading import LoadedModel

EDIT = FeatureEdit("b8.conv1", (0, 2), Mask((Rect(0.1, 0.2, 0.3, 0.4),)), 1.5, name="mouth")


def model(checkpoint: str | None, c_dim: int = 0) -> LoadedModel:
    shape = ModelShape("m", z_dim=8, w_dim=8, num_ws=4, c_dim=c_dim, layers=(), height=8, width=8)
    return LoadedModel(renderer=None, shape=shape, checkpoint=checkpoint)


def test_another_model_takes_the_scene_without_its_latent_and_edits():
    scene = Scene(checkpoint="a.pkl", seed=4, w=np.ones(8, np.float32), edits=(EDIT,))
    assert scene_for_model(scene, model("a.pkl")) is scene
    assert scene_for_model(scene, model("b.pkl")) == Scene(checkpoint="b.pkl", seed=4)


@pytest.mark.parametrize("class_index, c_dim, fitted", [(None, 0, None), (3, 0, None), (None, 4, 0),
                                                        (2, 4, 2), (4, 4, 0), (-1, 4, 0)])
def test_the_class_fits_the_model(class_index, c_dim, fitted):
    scene = Scene(class_index=class_index)
    assert scene_for_model(scene, model(None, c_dim)).class_index == fitted
