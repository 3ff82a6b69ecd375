"""User files: every reader names the file and says what is wrong with it in one line; writes are atomic."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from ganinterface.engine.directions import Direction
from ganinterface.engine.kinds import DirectionEdit, FeatureEdit
from ganinterface.engine.scene import Bitmap, Mask, Rect, Recipe, Scene, Stroke, encode_array
from ganinterface.export import userfiles
from ganinterface.export.userfiles import UserFileError, WrongModelError

MODEL = SimpleNamespace(num_ws=6, w_dim=4)  # what a latent or direction must fit
EDIT = FeatureEdit("b8.conv1", (0, 2), Mask((Rect(0.1, 0.2, 0.5, 0.6),)), 2.5)
SCENE = Scene(seed=12, truncation_psi=0.7, edits=(EDIT,))
MINE, OTHER = "a1" * 32, "b2" * 32


def _one_line_error(error: pytest.ExceptionInfo, path, *fragments: str) -> str:
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def _failing_replace(*_args, **_kwargs):
    raise OSError(28, "No space left on device")


# ---- scenes ---------------------------------------------------------------------------------------

def test_scene_json_round_trips(tmp_path):
    userfiles.write_scene(tmp_path / "s.json", SCENE)
    assert json.loads((tmp_path / "s.json").read_text())["format"] == "ganinterface.scene"
    assert userfiles.read_scene(tmp_path / "s.json") == SCENE


def test_scene_png_reads_back_the_scene_it_carries(tmp_path):
    image = np.arange(16 * 8 * 3, dtype=np.uint8).reshape(16, 8, 3)
    userfiles.write_png(tmp_path / "s.png", image, SCENE, scale=2)
    assert userfiles.read_scene(tmp_path / "s.png") == SCENE
    written = np.asarray(Image.open(tmp_path / "s.png"))
    np.testing.assert_array_equal(written, image.repeat(2, axis=0).repeat(2, axis=1))


def test_a_png_without_a_scene_is_refused(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "plain.png")
    with pytest.raises(UserFileError) as error:
        userfiles.read_scene(tmp_path / "plain.png")
    _one_line_error(error, tmp_path / "plain.png", "carries no ganinterface scene")


@pytest.mark.parametrize("name, content, fragment", [
    ("missing.json", None, "no such scene file"),
    ("broken.json", "{not json", "not valid JSON"),
    ("recipe.json", Recipe(edits=()).to_json(), "ganinterface.scene"),
    ("latin1.json", b"\xff\xfe{", "not UTF-8"),
    ("fake.png", b"GIF89a", "not a PNG"),
])
def test_bad_scene_files_name_the_file(tmp_path, name, content, fragment):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(UserFileError) as error:
        userfiles.read_scene(path)
    _one_line_error(error, path, fragment)


def test_a_failed_scene_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "s.json"
    userfiles.write_scene(path, SCENE)
    before = path.read_bytes()
    monkeypatch.setattr(os, "replace", _failing_replace)
    with pytest.raises(UserFileError) as error:
        userfiles.write_scene(path, Scene(seed=99))
    _one_line_error(error, path, "cannot write", "No space left on device")
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["s.json"]


def test_writing_into_a_missing_folder_is_refused_without_making_it(tmp_path):
    path = tmp_path / "nope" / "s.json"
    with pytest.raises(UserFileError) as error:
        userfiles.write_scene(path, SCENE)
    _one_line_error(error, path, "folder does not exist")
    assert not (tmp_path / "nope").exists()


@pytest.mark.parametrize("attempt", [
    userfiles.make_folder_for,
    userfiles.check_writable,
    lambda path: userfiles.write_scene(path, SCENE),
])
@pytest.mark.parametrize("below", [("x.png",), ("sub", "x.png")])
def test_an_output_folder_through_a_file_names_the_file(tmp_path, monkeypatch, attempt, below):
    monkeypatch.chdir(tmp_path)
    Path("afile").write_text("in the way")
    path = Path("afile", *below)
    with pytest.raises(UserFileError) as error:
        attempt(path)
    assert str(error.value) == f"{path}: cannot write: afile is a file, not a folder"


def test_check_writable_accepts_outputs_in_folders_still_to_be_made_and_makes_none(tmp_path):
    (tmp_path / "old.png").write_text("replaced by outputs")
    userfiles.check_writable(tmp_path / "old.png")
    userfiles.check_writable(tmp_path / "new" / "deeper" / "x.png")
    userfiles.check_writable(tmp_path / "frames", folder=True)
    assert os.listdir(tmp_path) == ["old.png"]


def test_check_writable_refuses_a_folder_for_a_file_and_a_file_for_a_folder(tmp_path):
    (tmp_path / "dir.png").mkdir()
    (tmp_path / "file").write_text("")
    with pytest.raises(UserFileError) as error:
        userfiles.check_writable(tmp_path / "dir.png")
    _one_line_error(error, tmp_path / "dir.png", "cannot write: it is a folder, not a file")
    with pytest.raises(UserFileError) as error:
        userfiles.check_writable(tmp_path / "file", folder=True)
    _one_line_error(error, tmp_path / "file", "cannot write: it is a file, not a folder")


def test_check_writable_refuses_a_read_only_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("this user (root) may write in a read-only folder")
        for path in (locked / "x.png", locked / "new" / "x.png"):
            with pytest.raises(UserFileError) as error:
                userfiles.check_writable(path)
            _one_line_error(error, path, f"cannot write: no permission to write in {locked}")
    finally:
        locked.chmod(0o755)


def test_check_writable_asks_the_system_about_the_nearest_existing_folder(tmp_path, monkeypatch):
    """As root every folder is writable, so the system's answer is simulated: no to ``locked``."""
    locked = tmp_path / "locked"
    locked.mkdir()
    asked = []

    def access(path, mode, **kwargs):
        asked.append(Path(path))
        return Path(path) != locked

    monkeypatch.setattr(os, "access", access)
    with pytest.raises(UserFileError) as error:
        userfiles.check_writable(locked / "new" / "x.png")
    _one_line_error(error, locked / "new" / "x.png", f"no permission to write in {locked}")
    userfiles.check_writable(tmp_path / "x.png")
    assert asked == [locked, tmp_path]


# ---- numbers that are not finite -------------------------------------------------------------------

NAN_ROWS = np.array([[0.5, np.nan], [np.inf, 1.0]])
TOO_LARGE_FOR_FLOAT32 = np.array([1e300, 0.0, 0.0, 0.0])  # becomes inf when read as float32
RICH_SCENE = Scene(seed=3, w=np.zeros((6, 4), np.float32), edits=(
    FeatureEdit("b8.conv1", (0,), Mask((Stroke(((0.1, 0.2), (0.3, 0.4))), Rect(0.1, 0.2, 0.5, 0.6),
                                        Bitmap(np.ones((2, 2), np.float32)))), 2.5),
    DirectionEdit(np.ones(4, np.float32), 1.5)))


def _set(path: tuple, value):
    """A change to a scene's JSON: put ``value`` at ``path`` (keys and indices)."""
    def change(data):
        for key in path[:-1]:
            data = data[key]
        data[path[-1]] = value
    return change


NON_FINITE_SCENE_FIELDS = [
    (("truncation_psi",), float("nan"), "scene.truncation_psi must be finite, got nan"),
    (("edits", 0, "amount"), float("inf"), "edits[0].amount must be finite, got inf"),
    (("edits", 0, "mask", "shapes", 0, "points", 1, 0), float("-inf"),
     "edits[0].mask.shapes[0].points[1] must be finite"),
    (("edits", 0, "mask", "shapes", 1, "x1"), float("nan"), "edits[0].mask.shapes[1].x1 must be finite"),
    (("edits", 0, "mask", "dx"), float("inf"), "edits[0].mask.dx must be finite"),
    (("edits", 0, "mask", "shapes", 2, "values"), encode_array(NAN_ROWS),
     "edits[0].mask.shapes[2].values contains NaN or infinite values"),
    (("edits", 1, "direction"), encode_array(TOO_LARGE_FOR_FLOAT32),
     "edits[1].direction contains NaN or infinite values"),
    (("w",), encode_array(np.full((6, 4), np.inf, np.float32)), "scene.w contains NaN or infinite values"),
]


@pytest.mark.parametrize("path, value, problem", NON_FINITE_SCENE_FIELDS)
def test_non_finite_numbers_in_a_scene_are_refused_naming_file_and_field(tmp_path, path, value,
                                                                          problem):
    data = RICH_SCENE.to_dict()
    _set(path, value)(data)
    (tmp_path / "s.json").write_text(json.dumps(data))  # json writes NaN and Infinity as Python does
    with pytest.raises(UserFileError) as error:
        userfiles.read_scene(tmp_path / "s.json")
    _one_line_error(error, tmp_path / "s.json", problem)


@pytest.mark.parametrize("path, value, problem", NON_FINITE_SCENE_FIELDS[1:-1])
def test_non_finite_numbers_in_a_recipe_are_refused_naming_file_and_field(tmp_path, path, value,
                                                                           problem):
    data = json.loads(Recipe(edits=RICH_SCENE.edits).to_json())
    _set(path, value)(data)
    (tmp_path / "r.json").write_text(json.dumps(data))
    with pytest.raises(UserFileError) as error:
        userfiles.read_recipe(tmp_path / "r.json")
    _one_line_error(error, tmp_path / "r.json", problem)


@pytest.mark.parametrize("values", [np.array([0.0, np.inf, 0.0, 0.0]), TOO_LARGE_FOR_FLOAT32])
def test_latents_with_values_float32_cannot_hold_are_refused(tmp_path, values):
    np.save(tmp_path / "l.npy", values)
    with pytest.raises(UserFileError) as error:
        userfiles.read_latent(tmp_path / "l.npy", MODEL)
    _one_line_error(error, tmp_path / "l.npy", "latent contains NaN or infinite values")


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e300"])
def test_clipboard_latents_with_non_finite_numbers_are_refused(number):
    with pytest.raises(UserFileError) as error:
        userfiles.latent_from_text(f'{{"ganinterface.latent": [0, 1, {number}, 2]}}', MODEL)
    _one_line_error(error, "clipboard", "latent contains NaN or infinite values")


def _torch_file(path, vector):
    import torch

    torch.save({"direction": torch.from_numpy(vector)}, path)


@pytest.mark.parametrize("name, write", [
    ("nan.npy", lambda path: np.save(path, np.array([0.0, np.nan, 0.0, 0.0], np.float32))),
    ("huge.npy", lambda path: np.save(path, TOO_LARGE_FOR_FLOAT32)),
    ("inf.pt", lambda path: _torch_file(path, np.array([0.0, np.inf, 0.0, 0.0], np.float32))),
    ("huge.pt", lambda path: _torch_file(path, TOO_LARGE_FOR_FLOAT32)),
    ("nan.csv", lambda path: path.write_text("0.1,nan,0.2,0.3\n")),
    ("inf.csv", lambda path: path.write_text("0.1,-inf,0.2,0.3\n")),
    ("huge.csv", lambda path: path.write_text("0.1,1e300,0.2,0.3\n")),
])
def test_directions_with_non_finite_numbers_are_refused(tmp_path, name, write):
    write(tmp_path / name)
    with pytest.raises(UserFileError) as error:
        userfiles.read_direction(tmp_path / name, MODEL)
    _one_line_error(error, tmp_path / name, "direction contains NaN or infinite values")


# ---- recipes --------------------------------------------------------------------------------------

def test_recipe_round_trips_and_is_accepted_by_its_own_model(tmp_path):
    recipe = Recipe(edits=(EDIT,), name="open", model_hash=MINE)
    userfiles.write_recipe(tmp_path / "r.json", recipe)
    assert userfiles.read_recipe(tmp_path / "r.json", model_hash=MINE) == recipe
    assert userfiles.read_recipe(tmp_path / "r.json") == recipe  # no model to check against


def test_a_recipe_for_another_model_is_refused_naming_both(tmp_path):
    userfiles.write_recipe(tmp_path / "r.json", Recipe(edits=(EDIT,), model_hash=OTHER))
    with pytest.raises(WrongModelError) as error:
        userfiles.read_recipe(tmp_path / "r.json", model_hash=MINE)
    _one_line_error(error, tmp_path / "r.json",
                    f"made for another model ({OTHER[:12]}…), not this one ({MINE[:12]}…)")


def test_a_recipe_for_any_model_fits_every_model(tmp_path):
    userfiles.write_recipe(tmp_path / "r.json", Recipe(edits=(EDIT,)))
    assert userfiles.read_recipe(tmp_path / "r.json", model_hash=MINE).edits == (EDIT,)


@pytest.mark.parametrize("content, fragment", [
    (None, "no such recipe file"),
    (Scene().to_json(), "not a ganinterface.recipe file"),
    ('{"format": "ganinterface.recipe", "version": 1, "edits": [{"kind": "laser"}]}', "laser"),
])
def test_bad_recipe_files_name_the_file(tmp_path, content, fragment):
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserFileError) as error:
        userfiles.read_recipe(path)
    _one_line_error(error, path, fragment)


# ---- latents --------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, expected", [((4,), (4,)), ((1, 4), (4,)), ((6, 4), (6, 4)),
                                             ((1, 6, 4), (6, 4))])
def test_latents_of_w_and_w_plus_round_trip(tmp_path, shape, expected):
    latent = np.random.RandomState(0).randn(*shape).astype(np.float32)
    userfiles.write_latent(tmp_path / "l.npy", latent)
    read = userfiles.read_latent(tmp_path / "l.npy", MODEL)
    assert read.shape == expected and read.dtype == np.float32
    np.testing.assert_array_equal(read, latent.reshape(expected))


@pytest.mark.parametrize("shape", [(5,), (6, 5), (3, 4), (2, 6, 4)])
def test_latents_of_the_wrong_shape_are_refused_naming_the_shape(tmp_path, shape):
    np.save(tmp_path / "l.npy", np.zeros(shape, np.float32))
    with pytest.raises(UserFileError) as error:
        userfiles.read_latent(tmp_path / "l.npy", MODEL)
    _one_line_error(error, tmp_path / "l.npy", f"latent shape {shape} does not fit this model",
                    "expected (4,) or (6, 4)")


def test_non_finite_and_unreadable_latents_are_refused(tmp_path):
    np.save(tmp_path / "nan.npy", np.full(4, np.nan, np.float32))
    with pytest.raises(UserFileError, match="NaN or infinite"):
        userfiles.read_latent(tmp_path / "nan.npy", MODEL)
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(UserFileError) as error:
        userfiles.read_latent(tmp_path / "junk.npy", MODEL)
    _one_line_error(error, tmp_path / "junk.npy", "not a readable .npy array")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UserFileError) as error:
        userfiles.read_latent(tmp_path / "objects.npy", MODEL)
    _one_line_error(error, tmp_path / "objects.npy", "not a readable .npy array")
    with pytest.raises(UserFileError, match="no such latent file"):
        userfiles.read_latent(tmp_path / "none.npy", MODEL)


def test_a_latent_round_trips_through_clipboard_text():
    latent = np.random.RandomState(1).randn(6, 4).astype(np.float32)
    text = userfiles.latent_to_text(latent)
    assert json.loads(text) == {"ganinterface.latent": latent.tolist()}
    np.testing.assert_array_equal(userfiles.latent_from_text(text, MODEL), latent)


@pytest.mark.parametrize("text, fragment", [
    ("not a latent", "holds no latent"),
    ('{"other": [1, 2]}', "holds no latent"),
    ('{"ganinterface.latent": [1, 2]}', "latent shape (2,) does not fit"),
])
def test_clipboard_text_without_a_fitting_latent_is_refused(text, fragment):
    with pytest.raises(UserFileError) as error:
        userfiles.latent_from_text(text, MODEL)
    _one_line_error(error, "clipboard", fragment)


def test_a_failed_latent_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "l.npy"
    userfiles.write_latent(path, np.ones(4, np.float32))
    monkeypatch.setattr(os, "replace", _failing_replace)
    with pytest.raises(UserFileError, match="cannot write"):
        userfiles.write_latent(path, np.zeros(4, np.float32))
    np.testing.assert_array_equal(np.load(path), np.ones(4, np.float32))
    assert os.listdir(tmp_path) == ["l.npy"]


# ---- directions -----------------------------------------------------------------------------------

def test_direction_round_trips_and_fits_the_model(tmp_path):
    vector = np.arange(4, dtype=np.float32)
    npy, sidecar = userfiles.write_direction(tmp_path / "smile", Direction(vector, first=2,
                                                                          name="smile",
                                                                          model_hash=MINE))
    assert (npy.name, sidecar.name) == ("smile.npy", "smile.json")
    direction = userfiles.read_direction(npy, MODEL, model_hash=MINE)
    np.testing.assert_array_equal(direction.vector, vector)
    assert (direction.first, direction.name) == (2, "smile")


def test_a_direction_for_another_model_is_refused_as_a_recipe_is(tmp_path):
    npy, _ = userfiles.write_direction(tmp_path / "d", Direction(np.ones(4, np.float32),
                                                                model_hash=OTHER))
    with pytest.raises(WrongModelError) as error:
        userfiles.read_direction(npy, MODEL, model_hash=MINE)
    _one_line_error(error, npy, f"made for another model ({OTHER[:12]}…), not this one")


def test_bad_directions_name_the_file_once(tmp_path):
    np.save(tmp_path / "wide.npy", np.ones(5, np.float32))
    with pytest.raises(UserFileError) as error:
        userfiles.read_direction(tmp_path / "wide.npy", MODEL)
    message = _one_line_error(error, tmp_path / "wide.npy", "shape (5,)", "(4,) or (6, 4)")
    assert message.count("wide.npy") == 1
    (tmp_path / "side.npy").write_bytes((tmp_path / "wide.npy").read_bytes())
    (tmp_path / "side.json").write_text("{broken")
    with pytest.raises(UserFileError) as error:
        userfiles.read_direction(tmp_path / "side.npy", MODEL)
    _one_line_error(error, tmp_path / "side.json", "not valid JSON")


# ---- images ---------------------------------------------------------------------------------------

def test_images_read_as_rgb_and_bad_ones_name_the_file(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    np.testing.assert_array_equal(userfiles.read_image(tmp_path / "grey.png"),
                                  np.repeat(grey[:, :, None], 3, axis=2))
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(UserFileError) as error:
        userfiles.read_image(tmp_path / "text.png")
    _one_line_error(error, tmp_path / "text.png", "not a readable image")
