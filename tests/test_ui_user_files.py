"""The panels read user files through export.userfiles: the window says what the command line says."""

from __future__ import annotations

import numpy as np
import pytest

from ganinterface.cli import main as cli_main
from ganinterface.engine.directions import Direction, save_direction
from ganinterface.engine.kinds import FeatureEdit
from ganinterface.engine.scene import Mask, Rect, Recipe
from ganinterface.models.native import generator_hash, save_native
from ui_support import open_window, tiny_generator

OTHER = "c3" * 32


@pytest.fixture
def window(qtbot, tmp_path):
    with open_window(qtbot, tmp_path) as win:
        yield win


def _errors_after(window, call) -> list[str]:
    before = len(window._ask.errors)
    assert not call()
    return window._ask.errors[before:]


def test_a_recipe_for_another_model_is_refused_by_the_animation_panel_as_by_the_cli(
        window, tmp_path, capsys):
    path = tmp_path / "other.json"
    edit = FeatureEdit("b16.conv1", (0,), Mask((Rect(0.2, 0.2, 0.6, 0.4),)), 2.0)
    path.write_text(Recipe(edits=(edit,), model_hash=OTHER).to_json())
    mine = generator_hash(tiny_generator())
    expected = f"{path}: made for another model ({OTHER[:12]}…), not this one ({mine[:12]}…)"

    assert _errors_after(window, lambda: window.animation_panel.set_recipe(str(path))) == [expected]
    assert window.animation_panel.recipe is None

    checkpoint = tmp_path / "tiny.safetensors"
    save_native(tiny_generator(), checkpoint)
    assert generator_hash(tiny_generator()) == mine
    assert cli_main(["animate", str(checkpoint), "--seed", "1", "--recipe", str(path),
                     "-o", str(tmp_path / "a.gif")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"ganinterface animate: error: {expected}; pass --force to apply it anyway")


def test_a_latent_keyframe_of_the_wrong_shape_names_file_and_shapes(window, tmp_path):
    shape = window.model.shape
    path = tmp_path / "wide.npy"
    np.save(path, np.zeros((2, shape.w_dim + 1), np.float32))
    errors = _errors_after(window, lambda: window.animation_panel.add_latent_file(str(path)))
    assert errors == [f"{path}: latent shape (2, {shape.w_dim + 1}) does not fit this model "
                      f"(expected ({shape.w_dim},) or ({shape.num_ws}, {shape.w_dim}))"]
    assert window.animation_panel.keyframes == []


def test_a_direction_of_the_wrong_shape_names_the_file_once(window, tmp_path):
    path = tmp_path / "short.npy"
    save_direction(path, Direction(np.ones(3, np.float32), name="short"))
    errors = _errors_after(window, lambda: window.directions_panel.load(str(path)))
    assert len(errors) == 1 and errors[0].startswith(f"{path}: direction has shape (3,)")
    assert errors[0].count("short.npy") == 1
    assert window.stack.scene.edits == ()


def test_a_latent_keyframe_for_another_model_is_refused_and_one_for_this_model_is_named(
        window, tmp_path):
    from ganinterface.export.userfiles import LatentFile, write_latent_file

    shape = window.model.shape
    w = np.zeros((shape.num_ws, shape.w_dim), np.float32)
    other = tmp_path / "other.npz"
    write_latent_file(other, LatentFile(w=w, model_hash=OTHER, source="friend.jpg"))
    errors = _errors_after(window, lambda: window.animation_panel.add_latent_file(str(other)))
    assert len(errors) == 1 and errors[0].startswith(f"{other}: made for another model")
    assert window.animation_panel.keyframes == []

    mine = tmp_path / "mine.npz"
    write_latent_file(mine, LatentFile(w=w, model_hash=generator_hash(tiny_generator()),
                                       source="holiday.jpg"))
    assert window.animation_panel.add_latent_file(str(mine))
    np.save(tmp_path / "plain.npy", w[0])
    assert window.animation_panel.add_latent_file(str(tmp_path / "plain.npy"))
    panel = window.animation_panel
    assert [panel.list.item(i).text() for i in range(2)] == ["1. holiday.jpg (W+)",
                                                             "2. plain.npy (W)"]
