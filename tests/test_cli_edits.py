"""End-to-end tests of ``ganinterface apply-recipe`` and ``ganinterface animate`` on a tiny model."""

import math
import os

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest
from tiny_models import tiny_stylegan2

from ganinterface.cli import main
from ganinterface.engine.renderer import Renderer
from ganinterface.engine.kinds import FeatureEdit
from ganinterface.engine.scene import Mask, Rect, Recipe, Scene
from ganinterface.export.images import read_png_scene
from ganinterface.models.loading import load_generator
from ganinterface.models.native import save_native


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_native(tiny_stylegan2(seed=1), path)
    return path


@pytest.fixture(scope="module")
def renderer(checkpoint):
    return Renderer(load_generator(checkpoint), "cpu")


def _recipe(model_hash=""):
    mask = Mask(shapes=(Rect(0.0, 0.5, 1.0, 1.0),))  # the lower half
    return Recipe(edits=(FeatureEdit("b8.conv1", (0, 1, 2), mask, amount=4.0, name="lower half"),),
                  name="test recipe", model_hash=model_hash)


@pytest.fixture
def recipe_file(tmp_path):
    path = tmp_path / "recipe.json"
    path.write_text(_recipe().to_json())
    return path


def _scene(checkpoint, seed, **changes):
    return Scene(checkpoint=str(checkpoint.resolve()), seed=seed, **changes)


def _image(renderer, scene):
    result = renderer.render(scene)
    assert result.error is None
    return result.image


def _run(args, capsys):
    code = main(args)
    err = capsys.readouterr().err
    return code, err


def _assert_one_line_error(err, command, *fragments):
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"ganinterface {command}: error: ")
    for fragment in fragments:
        assert fragment in last


# ---- apply-recipe -----------------------------------------------------------------------------------

def test_apply_recipe_writes_each_seed_as_the_renderer_draws_it(tmp_path, checkpoint, renderer,
                                                                recipe_file, capsys):
    code, err = _run(["apply-recipe", str(recipe_file), "--checkpoint", str(checkpoint),
                      "--seeds", "3,7-8", "-o", str(tmp_path / "out" / "{seed}.png")], capsys)
    assert code == 0, err
    assert sorted(os.listdir(tmp_path / "out")) == ["3.png", "7.png", "8.png"]
    for seed in (3, 7, 8):
        expected_scene = _recipe().applied_to(_scene(checkpoint, seed))
        written = iio.imread(tmp_path / "out" / f"{seed}.png")
        assert np.array_equal(written, _image(renderer, expected_scene))
        assert read_png_scene(tmp_path / "out" / f"{seed}.png") == expected_scene
        unedited = _image(renderer, _scene(checkpoint, seed))
        changed = np.abs(written.astype(int) - unedited.astype(int)).sum(axis=2) > 0
        assert changed.any()


def test_apply_recipe_strength_scales_the_edit(tmp_path, checkpoint, renderer, recipe_file, capsys):
    for strength in ("0", "2.5"):
        code, err = _run(["apply-recipe", str(recipe_file), "--checkpoint", str(checkpoint),
                          "--seeds", "4", "--strength", strength,
                          "-o", str(tmp_path / f"s{strength}_{{seed}}.png")], capsys)
        assert code == 0, err
    zero = iio.imread(tmp_path / "s0_4.png")
    assert np.array_equal(zero, _image(renderer, _scene(checkpoint, 4)))
    scene = read_png_scene(tmp_path / "s2.5_4.png")
    assert scene.edits[0].amount == pytest.approx(10.0)


def test_apply_recipe_keep_rest_overrides_the_recipe(tmp_path, checkpoint, renderer, recipe_file,
                                                     capsys):
    for flag in ("--keep-rest", "--no-keep-rest"):
        code, err = _run(["apply-recipe", str(recipe_file), "--checkpoint", str(checkpoint),
                          "--seeds", "5", flag, "-o", str(tmp_path / f"{flag}{{seed}}.png")], capsys)
        assert code == 0, err
    kept = read_png_scene(tmp_path / "--keep-rest5.png")
    assert [e.keep_rest for e in kept.edits] == [True]
    written = iio.imread(tmp_path / "--keep-rest5.png")
    assert np.array_equal(written, _image(renderer, kept))
    # the recipe paints the lower half (rows 8-15): the rows above it are the unedited portrait's,
    # which they are not when the edit may change the rest
    unedited = _image(renderer, _scene(checkpoint, 5))
    spilled = iio.imread(tmp_path / "--no-keep-rest5.png")
    assert np.array_equal(written[:7], unedited[:7]) and not np.array_equal(spilled[:7], unedited[:7])
    assert [e.keep_rest for e in read_png_scene(tmp_path / "--no-keep-rest5.png").edits] == [False]


def test_apply_recipe_scale_enlarges_pixel_exactly(tmp_path, checkpoint, renderer, recipe_file, capsys):
    code, err = _run(["apply-recipe", str(recipe_file), "--checkpoint", str(checkpoint), "--seeds", "2",
                      "--scale", "3", "-o", str(tmp_path / "{seed:03d}.png")], capsys)
    assert code == 0, err
    image = _image(renderer, _recipe().applied_to(_scene(checkpoint, 2)))
    assert np.array_equal(iio.imread(tmp_path / "002.png"), np.repeat(np.repeat(image, 3, 0), 3, 1))


def test_apply_recipe_refuses_a_recipe_for_another_model_unless_forced(tmp_path, checkpoint, capsys):
    recipe = tmp_path / "other.json"
    recipe.write_text(_recipe(model_hash="ab" * 32).to_json())
    args = ["apply-recipe", str(recipe), "--checkpoint", str(checkpoint), "--seeds", "1",
            "-o", str(tmp_path / "{seed}.png")]
    code, err = _run(args, capsys)
    assert code == 1
    _assert_one_line_error(err, "apply-recipe", "other.json", "abababababab", "--force")
    assert not (tmp_path / "1.png").exists()
    code, err = _run(args + ["--force"], capsys)
    assert code == 0, err
    assert (tmp_path / "1.png").exists()


def test_apply_recipe_accepts_a_recipe_made_for_this_model(tmp_path, checkpoint, renderer, capsys):
    from ganinterface.models.native import generator_hash

    recipe = tmp_path / "mine.json"
    recipe.write_text(_recipe(model_hash=generator_hash(renderer.generator)).to_json())
    code, err = _run(["apply-recipe", str(recipe), "--checkpoint", str(checkpoint), "--seeds", "1",
                      "-o", str(tmp_path / "{seed}.png")], capsys)
    assert code == 0, err


@pytest.mark.parametrize("content, fragment", [
    ("{not json", "not valid JSON"),
    ('{"format": "ganinterface.scene", "version": 1}', "not a ganinterface.recipe file"),
    ('{"format": "ganinterface.recipe", "version": 1, "edits": [{"kind": "laser"}]}', "laser"),
])
def test_apply_recipe_reports_a_bad_recipe_in_one_line(tmp_path, checkpoint, capsys, content, fragment):
    recipe = tmp_path / "bad.json"
    recipe.write_text(content)
    code, err = _run(["apply-recipe", str(recipe), "--checkpoint", str(checkpoint), "--seeds", "1",
                      "-o", str(tmp_path / "{seed}.png")], capsys)
    assert code == 1
    _assert_one_line_error(err, "apply-recipe", "bad.json", fragment)


def test_apply_recipe_reports_missing_recipe_and_bad_patterns(tmp_path, checkpoint, recipe_file, capsys):
    code, err = _run(["apply-recipe", str(tmp_path / "nope.json"), "--checkpoint", str(checkpoint),
                      "--seeds", "1", "-o", str(tmp_path / "{seed}.png")], capsys)
    assert code == 1
    _assert_one_line_error(err, "apply-recipe", "nope.json", "no such recipe")
    for pattern, fragment in [("same.png", "same file"), ("{seed}.jpg", ".png"), ("{sed}.png", "sed")]:
        code, err = _run(["apply-recipe", str(recipe_file), "--checkpoint", str(checkpoint),
                          "--seeds", "1-2", "-o", str(tmp_path / pattern)], capsys)
        assert code == 1
        _assert_one_line_error(err, "apply-recipe", fragment)
    code, err = _run(["apply-recipe", str(recipe_file), "--checkpoint", str(checkpoint),
                      "--seeds", "5-1", "-o", str(tmp_path / "{seed}.png")], capsys)
    _assert_one_line_error(err, "apply-recipe", "backwards")
    assert sorted(os.listdir(tmp_path)) == ["recipe.json"]


def test_apply_recipe_with_an_edit_the_model_lacks_fails_cleanly(tmp_path, checkpoint, capsys):
    mask = Mask(shapes=(Rect(0, 0, 1, 1),))
    recipe = tmp_path / "wrong.json"
    recipe.write_text(Recipe(edits=(FeatureEdit("b1024.conv1", (0,), mask, 1.0),)).to_json())
    code, err = _run(["apply-recipe", str(recipe), "--checkpoint", str(checkpoint), "--seeds", "1",
                      "-o", str(tmp_path / "{seed}.png")], capsys)
    assert code == 1
    _assert_one_line_error(err, "apply-recipe", "seed 1", "b1024.conv1")
    assert sorted(os.listdir(tmp_path)) == ["wrong.json"]


def test_apply_recipe_sums_up_what_it_wrote_and_quiet_prints_nothing(tmp_path, checkpoint,
                                                                     recipe_file, capsys):
    argv = ["apply-recipe", str(recipe_file), str(checkpoint), "--seeds", "0-9",
            "-o", str(tmp_path / "out" / "seed{seed}.png")]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert out == f"wrote 10 images to {tmp_path / 'out'}{os.sep} (seed0.png … seed9.png)\n"
    assert "apply-recipe" in err  # the progress bar
    assert main([*argv, "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")


# ---- animate ----------------------------------------------------------------------------------------

def test_animate_w_interpolation_starts_and_ends_on_the_seeds(tmp_path, checkpoint, renderer, capsys):
    out = tmp_path / "frames"
    code, err = _run(["animate", "--checkpoint", str(checkpoint), "--seeds", "0,5", "--frames", "5",
                      "-o", str(out) + "/"], capsys)
    assert code == 0, err
    names = sorted(os.listdir(out))
    assert names == [f"frame_{i:04d}.png" for i in range(5)]
    first, last = iio.imread(out / names[0]), iio.imread(out / names[-1])
    assert np.array_equal(first, _image(renderer, _scene(checkpoint, 0)))
    assert np.array_equal(last, _image(renderer, _scene(checkpoint, 5)))
    # the middle frame renders the average of the two W+ latents
    ws0 = renderer.base_ws(_scene(checkpoint, 0))
    ws5 = renderer.base_ws(_scene(checkpoint, 5))
    middle = _image(renderer, _scene(checkpoint, 0, w=(ws0 + ws5) / 2))
    assert np.abs(iio.imread(out / names[2]).astype(int) - middle.astype(int)).max() <= 1


def test_animate_z_loop_starts_on_the_first_seed(tmp_path, checkpoint, renderer, capsys):
    code, err = _run(["animate", "--checkpoint", str(checkpoint), "--seeds", "2,9", "--space", "z",
                      "--loop", "--frames", "4", "--truncation-psi", "0.7", "-o", str(tmp_path / "z")],
                     capsys)
    assert code == 0, err
    frames = [iio.imread(tmp_path / "z" / f"frame_{i:04d}.png") for i in range(4)]
    assert np.array_equal(frames[0], _image(renderer, _scene(checkpoint, 2, truncation_psi=0.7)))
    # with a loop of 2 keyframes over 4 frames, frame 2 is the second seed
    assert np.array_equal(frames[2], _image(renderer, _scene(checkpoint, 9, truncation_psi=0.7)))


def test_animate_recipe_talk_curve_as_a_strip(tmp_path, checkpoint, renderer, recipe_file, capsys):
    code, err = _run(["animate", "--checkpoint", str(checkpoint), "--seed", "3", "--recipe",
                      str(recipe_file), "--curve", "talk", "--cycles", "1", "--frames", "4",
                      "-o", str(tmp_path / "strip.png")], capsys)
    assert code == 0, err
    strip = iio.imread(tmp_path / "strip.png")
    assert strip.shape == (16, 4 * 8, 3)
    for index in range(4):
        strength = math.sin(math.pi * index / 4) ** 2
        scene = _recipe().scaled(strength).applied_to(_scene(checkpoint, 3))
        assert np.array_equal(strip[:, index * 8:(index + 1) * 8], _image(renderer, scene)), index
    assert not np.array_equal(strip[:, :8], strip[:, 16:24])  # the edit shows at the peak


def test_animate_mp4_with_odd_size(tmp_path, checkpoint, capsys):
    code, err = _run(["animate", "--checkpoint", str(checkpoint), "--seeds", "1,2,3", "--frames", "6",
                      "--fps", "12", "--size", "17x33", "-o", str(tmp_path / "clip.mp4")], capsys)
    assert code == 0, err
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "clip.mp4"))
    meta = next(reader)
    assert meta["size"] == (18, 34) and meta["fps"] == pytest.approx(12)
    assert sum(1 for _ in reader) == 6
    assert os.listdir(tmp_path) == ["clip.mp4"]


def test_animate_gif(tmp_path, checkpoint, capsys):
    code, err = _run(["animate", "--checkpoint", str(checkpoint), "--seeds", "1,2", "--frames", "3",
                      "--size", "32x64", "--resample", "nearest", "-o", str(tmp_path / "a.gif")], capsys)
    assert code == 0, err
    assert iio.imread(tmp_path / "a.gif", index=None).shape[:3] == (3, 64, 32)


@pytest.mark.parametrize("name", ["a.gif", "a.mp4", "dir/", "strip.png"])
def test_animate_interrupted_or_failing_midway_leaves_nothing(tmp_path, checkpoint, capsys,
                                                              monkeypatch, name):
    real_render = Renderer.render
    calls = []

    def render_then_stop(self, scene, taps=()):
        calls.append(scene)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_render(self, scene, taps)

    monkeypatch.setattr(Renderer, "render", render_then_stop)
    args = ["animate", "--checkpoint", str(checkpoint), "--seeds", "1,2", "--frames", "6",
            "-o", str(tmp_path / name)]
    code, err = _run(args, capsys)
    assert code == 130 and "interrupted" in err
    assert os.listdir(tmp_path) == []

    calls.clear()
    monkeypatch.setattr(Renderer, "render", lambda self, scene, taps=(): _failing_after(
        real_render, self, scene, taps, calls, 4))
    code, err = _run(args, capsys)
    assert code == 1
    _assert_one_line_error(err, "animate", "NaNs")
    assert os.listdir(tmp_path) == []


def _failing_after(real_render, renderer, scene, taps, calls, limit):
    calls.append(scene)
    result = real_render(renderer, scene, taps)
    if len(calls) >= limit:
        result.error = "the model produced NaNs"
        result.image = None
    return result


@pytest.mark.parametrize("extra, fragment", [
    (["--seeds", "4"], "at least two"),
    (["--seed", "4"], "--recipe"),
    (["--seeds", "1,2", "-o", "clip.webm"], "webm"),
    (["--seeds", "1,2", "--fps", "60"], "50 fps"),
    (["--seeds", "1,2", "--recipe", "missing.json"], "no such recipe"),
])
def test_animate_reports_bad_requests_in_one_line(tmp_path, checkpoint, capsys, monkeypatch,
                                                  extra, fragment):
    monkeypatch.chdir(tmp_path)
    args = ["animate", "--checkpoint", str(checkpoint), "--frames", "3", *extra]
    if "-o" not in extra:
        args += ["-o", "out.gif"]
    code, err = _run(args, capsys)
    assert code == 1
    _assert_one_line_error(err, "animate", fragment)
    assert os.listdir(tmp_path) == []


def test_animate_rejects_a_malformed_size(tmp_path, checkpoint, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["animate", "--checkpoint", str(checkpoint), "--seeds", "1,2", "--size", "big",
              "-o", str(tmp_path / "a.gif")])
    assert exit_info.value.code == 2
    assert "256x128" in capsys.readouterr().err


def test_request_errors_come_before_loading_the_model(tmp_path, capsys):
    missing_model = str(tmp_path / "no-such-model.pkl")
    code, err = _run(["apply-recipe", str(tmp_path / "r.json"), "--checkpoint", missing_model,
                      "--seeds", "1", "-o", str(tmp_path / "{seed}.png")], capsys)
    _assert_one_line_error(err, "apply-recipe", "r.json", "no such recipe")
    code, err = _run(["animate", "--checkpoint", missing_model, "--seed", "1",
                      "-o", str(tmp_path / "a.gif")], capsys)
    _assert_one_line_error(err, "animate", "--recipe")
    code, err = _run(["animate", "--checkpoint", missing_model, "--seeds", "1,2",
                      "-o", str(tmp_path / "a.gif")], capsys)
    assert code == 1
    _assert_one_line_error(err, "animate", "no-such-model.pkl")


def test_unwritable_outputs_are_one_line_errors(tmp_path, checkpoint, recipe_file, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    code, err = _run(["apply-recipe", str(recipe_file), "--checkpoint", str(checkpoint), "--seeds", "1",
                      "-o", str(blocker / "{seed}.png")], capsys)
    assert code == 1
    _assert_one_line_error(err, "apply-recipe", "cannot write")
    code, err = _run(["animate", "--checkpoint", str(checkpoint), "--seeds", "1,2", "--frames", "2",
                      "-o", str(blocker / "a.gif")], capsys)
    assert code == 1
    _assert_one_line_error(err, "animate", "cannot write")


@pytest.mark.parametrize("output, line", [
    ("a.gif", "wrote {tmp}/a.gif (3 frames at 24 fps)"),
    ("a.mp4", "wrote {tmp}/a.mp4 (3 frames at 24 fps)"),
    ("strip.png", "wrote {tmp}/strip.png (3 frames in one image)"),
    ("frames/", "wrote {tmp}/frames/frame_0000.png\nwrote {tmp}/frames/frame_0001.png\n"
                "wrote {tmp}/frames/frame_0002.png"),
])
def test_animate_says_what_it_wrote(tmp_path, checkpoint, capsys, output, line):
    assert main(["animate", str(checkpoint), "--seeds", "1,2", "--frames", "3",
                 "-o", str(tmp_path / output)]) == 0
    assert capsys.readouterr().out == line.replace("{tmp}", str(tmp_path)).replace("/", os.sep) + "\n"


def test_a_built_in_recipe_can_be_named_instead_of_its_path(tmp_path, capsys, monkeypatch):
    from ganinterface import bundled
    from ganinterface.engine.scene import Recipe

    shipped = tmp_path / "shipped"
    (shipped / "recipes").mkdir(parents=True)
    (shipped / "recipes" / "open-mouth.json").write_text(_recipe().to_json())
    monkeypatch.setattr(bundled, "checkpoints_dir", lambda: shipped)
    monkeypatch.chdir(tmp_path)  # no file called open-mouth here
    from ganinterface.cli.options import recipe_path

    assert recipe_path("open-mouth") == str(shipped / "recipes" / "open-mouth.json")
    assert recipe_path("close-mouth") == "close-mouth"  # not shipped: the reader will say so
    (tmp_path / "open-mouth").write_text(Recipe(edits=()).to_json())
    assert recipe_path("open-mouth") == "open-mouth"  # a file of that name wins
    code, err = _run(["apply-recipe", "nothing-like-it", "--seeds", "1", "-o",
                      str(tmp_path / "{seed}.png")], capsys)
    assert code == 1 and "nothing-like-it" in err
