"""Latents as first-class files: the .npz latent file, scenes with noise maps, edits that take
from a latent file, fitting a Gaussian, and the project / sample-latents / animate --latents
commands."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from ganinterface.cli import main
from ganinterface.engine.kinds import RegionResample, StyleMix
from ganinterface.engine.latents import LatentError, fit_gaussian
from ganinterface.engine.renderer import Renderer
from ganinterface.engine.scene import Mask, Rect, Scene
from ganinterface.export.images import read_png_scene
from ganinterface.export.userfiles import (LatentFile, UserFileError, WrongModelError,
                                           read_latent_file, write_latent_file)
from ganinterface.models.native import generator_hash, save_native
from tiny_models import tiny_stylegan2

MODEL = types.SimpleNamespace(num_ws=6, w_dim=8)


def _latent(rows: int | None = 6, noise: bool = False) -> LatentFile:
    w = np.arange(8, dtype=np.float32) if rows is None else np.arange(rows * 8, dtype=np.float32).reshape(rows, 8)
    maps = {"b8.conv0": np.full((8, 4), 0.5, np.float32)} if noise else None
    return LatentFile(w=w, noise=maps, model_hash="ab" * 32, source="me.jpg")


# ---- the file ------------------------------------------------------------------------------------

@pytest.mark.parametrize("rows, noise", [(None, False), (6, True)])
def test_a_latent_file_round_trips(tmp_path, rows, noise):
    written = _latent(rows, noise)
    write_latent_file(tmp_path / "a.npz", written)
    read = read_latent_file(tmp_path / "a.npz", MODEL, "ab" * 32, {"b8.conv0": (8, 4)})
    assert np.array_equal(read.w, written.w) and read.w.dtype == np.float32
    assert (read.model_hash, read.source) == ("ab" * 32, "me.jpg")
    assert (read.noise is None) == (not noise)
    if noise:
        assert np.array_equal(read.noise["b8.conv0"], written.noise["b8.conv0"])


def test_a_plain_npy_latent_reads_as_a_latent_without_hash(tmp_path):
    np.save(tmp_path / "w.npy", np.ones(8, np.float32))
    read = read_latent_file(tmp_path / "w.npy", MODEL, "ab" * 32)
    assert np.array_equal(read.w, np.ones(8)) and read.model_hash == "" and read.noise is None


def _refusal(tmp_path, make, message, **kwargs):
    path = tmp_path / "bad.npz"
    make(path)
    with pytest.raises(UserFileError) as error:
        read_latent_file(path, MODEL, **kwargs)
    assert str(error.value) == f"{path}: {message}"
    return error.value


def test_a_latent_for_another_checkpoint_is_refused(tmp_path):
    error = _refusal(tmp_path, lambda p: write_latent_file(p, _latent()),
                     "made for another model (abababababab…), not this one (cdcdcdcdcdcd…)",
                     model_hash="cd" * 32)
    assert isinstance(error, WrongModelError)


def test_a_w_plus_latent_with_the_wrong_number_of_rows_is_refused(tmp_path):
    _refusal(tmp_path, lambda p: write_latent_file(p, _latent(rows=5)),
             "W+ latent has 5 rows; this model has 6 (one per style input)")


def test_nan_in_a_latent_is_refused(tmp_path):
    bad = LatentFile(w=np.full(8, np.nan, np.float32))
    _refusal(tmp_path, lambda p: write_latent_file(p, bad), "latent contains NaN or infinite values")


def test_an_npz_that_is_not_a_latent_file_is_refused(tmp_path):
    _refusal(tmp_path, lambda p: np.savez(p, w=np.zeros(8)),
             "not a latent file (an .npz without format 'ganinterface.latent')")


def test_a_truncated_latent_file_is_refused(tmp_path):
    whole = tmp_path / "whole.npz"
    write_latent_file(whole, _latent())
    data = whole.read_bytes()
    _refusal(tmp_path, lambda p: p.write_bytes(data[: len(data) // 2]),
             "not a readable latent file (File is not a zip file)")


def test_noise_for_a_layer_the_model_lacks_is_refused(tmp_path):
    _refusal(tmp_path, lambda p: write_latent_file(p, _latent(noise=True)),
             "noise.b8.conv0: this model has no noise input at layer 'b8.conv0'",
             noise_shapes={"b4.conv1": (4, 2)})


def test_a_zip_member_that_inflates_beyond_the_limit_is_refused_unread(tmp_path, monkeypatch):
    import ganinterface.export.userfiles as userfiles

    monkeypatch.setattr(userfiles, "MAX_LATENT_MEMBER_BYTES", 250)  # the format string fits, w does not
    _refusal(tmp_path, lambda p: write_latent_file(p, _latent()),
             f"w.npy is too large for a latent ({128 + 6 * 8 * 4} bytes)")


# ---- scenes and edits -------------------------------------------------------------------------------

def test_a_scene_with_noise_maps_round_trips_and_renders_them():
    generator = tiny_stylegan2()
    maps = {name: np.zeros(tuple(v.shape), np.float32) for name, v in generator.stored_noise().items()}
    scene = Scene(w=np.asarray(generator.w_avg), noise_maps=maps)
    assert Scene.from_json(scene.to_json()) == scene
    assert "noise_maps" not in Scene().to_dict()  # scenes without them are written as before
    renderer = Renderer(generator, "cpu")
    with torch.no_grad():
        ws = generator.w_avg[None, None].repeat(1, generator.num_ws, 1)
        silent = generator.synthesize(ws, noise_mode="none").image[0]
    assert np.allclose(renderer.render(scene).raw, silent.numpy(), atol=1e-6)
    assert not np.allclose(renderer.render(scene.replace(noise_maps=None)).raw, silent.numpy(), atol=1e-3)


def test_style_mix_from_a_latent_file_takes_its_rows():
    generator = tiny_stylegan2()
    renderer = Renderer(generator, "cpu")
    borrowed = np.random.default_rng(1).standard_normal((generator.num_ws, generator.w_dim)).astype(np.float32)
    scene = Scene(seed=4, edits=(StyleMix(seed=0, first=0, last=2, w=borrowed, source="me.npz"),))
    result = renderer.render(scene)
    expected = renderer.base_ws(Scene(seed=4))
    expected[:3] = borrowed[:3]
    assert np.array_equal(result.ws, expected)
    assert Scene.from_json(scene.to_json()) == scene


def test_region_resample_from_a_latent_equals_resampling_from_the_seed_it_came_from():
    generator = tiny_stylegan2()
    renderer = Renderer(generator, "cpu")
    seeds_latent = renderer.base_ws(Scene(seed=9))
    mask = Mask(shapes=(Rect(0.0, 0.0, 1.0, 0.5),))
    from_seed = RegionResample(layer="b8.conv1", mask=mask, seed=9)
    from_file = RegionResample(layer="b8.conv1", mask=mask, seed=0, w=seeds_latent, source="nine.npz")
    first = renderer.render(Scene(seed=2, edits=(from_seed,)))
    second = Renderer(generator, "cpu").render(Scene(seed=2, edits=(from_file,)))
    assert np.array_equal(first.image, second.image)
    assert not np.array_equal(first.image, renderer.render(Scene(seed=2)).image)


def test_a_latent_source_of_the_wrong_shape_is_an_error_naming_the_edit():
    renderer = Renderer(tiny_stylegan2(), "cpu")
    result = renderer.render(Scene(edits=(StyleMix(seed=0, first=0, w=np.zeros(3)),)))
    assert "edit 1 (style_mix): its latent has shape (3,)" in result.error


# ---- the Gaussian -----------------------------------------------------------------------------------

def test_the_fitted_gaussian_is_the_sample_mean_and_unbiased_covariance():
    latents = np.array([[1.0, 2.0], [3.0, 0.0], [2.0, 4.0]])
    fitted = fit_gaussian(latents)
    assert np.allclose(fitted.mean, [2.0, 2.0])
    # by hand: deviations (-1, 0), (1, -2), (0, 2); sums of products over N - 1 = 2
    assert np.allclose(fitted.covariance, [[1.0, -1.0], [-1.0, 4.0]])


def test_draws_follow_the_fitted_gaussian_and_shrink_towards_its_mean():
    rng = np.random.default_rng(0)
    latents = rng.multivariate_normal([1.0, -2.0, 0.5], [[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]], 50)
    fitted = fit_gaussian(latents)
    draws = fitted.sample(40000, seed=1)
    assert np.allclose(draws.mean(axis=0), fitted.mean, atol=0.03)
    assert np.allclose(np.cov(draws, rowvar=False), fitted.covariance, atol=0.05)
    half = fitted.sample(40000, seed=1, shrink=0.5)
    assert np.allclose(half - fitted.mean, (draws - fitted.mean) * 0.5, atol=1e-5)
    assert np.allclose(fitted.sample(3, shrink=1.0), fitted.mean)
    with pytest.raises(LatentError, match="at least two"):
        fit_gaussian(latents[:1])


def test_a_w_plus_latent_counts_as_its_mean_row():
    plus = np.array([[0.0, 2.0], [2.0, 4.0]])  # mean row (1, 3)
    fitted = fit_gaussian([plus, np.array([3.0, 1.0])])
    assert np.allclose(fitted.mean, [2.0, 2.0])
    assert np.allclose(fitted.covariance, [[2.0, -2.0], [-2.0, 2.0]])  # (±1, ∓1) deviations, N - 1 = 1


# ---- the commands -----------------------------------------------------------------------------------

@pytest.fixture
def model(tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_native(tiny_stylegan2(), path)
    return path


def _picture(path, seed=0):
    from PIL import Image

    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (40, 30, 3), np.uint8)).save(path)


def test_project_writes_the_latent_and_a_reconstruction_carrying_its_scene(tmp_path, model, capsys):
    _picture(tmp_path / "me.png")
    _picture(tmp_path / "you.jpg", 1)
    assert main(["project", str(tmp_path / "me.png"), str(tmp_path / "you.jpg"), str(model),
                 "--steps", "5", "--space", "w+", "--noise", "-q", "-o", str(tmp_path / "out/{name}.npz")]) == 0
    generator = tiny_stylegan2()
    latent = read_latent_file(tmp_path / "out/me.npz", generator, generator_hash(generator))
    assert latent.source == "me.png" and latent.w.shape == (generator.num_ws, generator.w_dim)
    assert set(latent.noise) == set(generator.stored_noise())
    scene = read_png_scene(tmp_path / "out/me.png")
    assert np.array_equal(scene.w, latent.w) and scene.checkpoint == str(model.resolve())
    from PIL import Image

    shown = np.asarray(Image.open(tmp_path / "out/me.png").convert("RGB"))
    assert np.array_equal(shown, Renderer(generator, "cpu").render(scene).image)
    assert (tmp_path / "out/you.npz").exists() and capsys.readouterr().out == ""


def test_project_prints_its_figures_per_picture(tmp_path, model, capsys):
    _picture(tmp_path / "me.png")
    assert main(["project", str(tmp_path / "me.png"), "--checkpoint", str(model), "--steps", "2",
                 "-o", str(tmp_path / "{name}.npz")]) == 0
    distance, line = capsys.readouterr().out.strip().split("\n")
    assert distance == "distance: pixels at 3 scales, edges weighted"  # a safetensors file with no D beside it
    assert line.startswith(f"{tmp_path / 'me.png'}: PSNR ") and " dB, 2 steps in " in line


@pytest.mark.slow
def test_project_crop_projects_that_part_of_the_picture(tmp_path, model):
    from PIL import Image

    _picture(tmp_path / "me.png")  # 30 wide, 40 high; the model's images are 8 x 16
    Image.open(tmp_path / "me.png").crop((5, 4, 20, 34)).save(tmp_path / "part.png")
    for name, crop in (("me", ["--crop", "5,4,15,30"]), ("part", [])):
        assert main(["project", str(tmp_path / f"{name}.png"), str(model), "--steps", "2", "-q",
                     *crop, "-o", str(tmp_path / "out/{name}.npz")]) == 0
    generator = tiny_stylegan2()
    cropped, part = (read_latent_file(tmp_path / f"out/{n}.npz", generator).w for n in ("me", "part"))
    assert np.array_equal(cropped, part)


@pytest.mark.parametrize("crop, problem", [
    ("20,0,15,30", "the crop 20,0,15,30 is not inside the picture (30 × 40 px)"),
    ("0,0,20,20", "the crop 0,0,20,20 is 20 × 20 px, not the model's aspect (8 × 16 px): e.g. 20 × 40 px"),
])
def test_a_crop_that_does_not_fit_is_one_line_naming_the_picture(tmp_path, model, capsys, crop, problem):
    _picture(tmp_path / "me.png")
    assert main(["project", str(tmp_path / "me.png"), str(model), "--crop", crop, "--steps", "1",
                 "-o", str(tmp_path / "{name}.npz")]) == 1
    err = capsys.readouterr().err
    assert err == f"ganinterface project: error: {tmp_path / 'me.png'}: {problem}\n"
    assert not (tmp_path / "me.npz").exists()


def test_a_crop_that_is_not_four_numbers_is_refused(tmp_path, model, capsys):
    with pytest.raises(SystemExit):
        main(["project", "me.png", str(model), "--crop", "1,2,3"])
    assert "expected X,Y,W,H in whole pixels, e.g. 100,50,400,800; got '1,2,3'" in capsys.readouterr().err


@pytest.mark.parametrize("content, problem", [(b"not an image", "not a readable image (cannot identify"),
                                              (None, "not a readable image (image file is truncated)")])
def test_a_bad_picture_is_one_line_naming_it(tmp_path, model, capsys, content, problem):
    path = tmp_path / "bad.png"
    if content is None:
        _picture(path)
        content = path.read_bytes()[:200]
    path.write_bytes(content)
    assert main(["project", str(path), str(model), "--steps", "1", "-o", str(tmp_path / "{name}.npz")]) == 1
    out, err = capsys.readouterr()
    assert err.startswith(f"ganinterface project: error: {path}: {problem}") and err.count("\n") == 1
    assert out == ""  # refused before anything else is prepared or said


def test_sample_latents_draws_portraits_from_the_latents_gaussian(tmp_path, model):
    generator = tiny_stylegan2()
    rng = np.random.default_rng(0)
    for name in "abc":
        write_latent_file(tmp_path / f"{name}.npz", LatentFile(
            w=rng.standard_normal(generator.w_dim).astype(np.float32), model_hash=generator_hash(generator)))
    assert main(["sample-latents", str(model), "--from", *(str(tmp_path / f"{n}.npz") for n in "abc"),
                 "--count", "3", "--shrink", "1", "-q", "-o", str(tmp_path / "s{index}.npz")]) == 0
    mean = np.mean([read_latent_file(tmp_path / f"{n}.npz", generator).w for n in "abc"], axis=0)
    assert np.allclose(read_latent_file(tmp_path / "s2.npz", generator).w, mean, atol=1e-6)


def test_animate_morphs_between_latent_files(tmp_path, model):
    generator = tiny_stylegan2()
    a = LatentFile(w=np.zeros(generator.w_dim, np.float32))
    b = LatentFile(w=np.ones((generator.num_ws, generator.w_dim), np.float32))
    write_latent_file(tmp_path / "a.npz", a)
    write_latent_file(tmp_path / "b.npz", b)
    assert main(["animate", str(model), "--latents", str(tmp_path / "a.npz"), str(tmp_path / "b.npz"),
                 "--frames", "3", "-q", "-o", str(tmp_path / "frames")]) == 0
    frames = sorted((tmp_path / "frames").glob("frame_*.png"))
    assert len(frames) == 3
    from PIL import Image

    middle = np.asarray(Image.open(frames[1]).convert("RGB"))
    expected = Renderer(generator, "cpu").render(Scene(w=np.full((generator.num_ws, generator.w_dim), 0.5)))
    assert np.array_equal(middle, expected.image)


def test_render_takes_latent_files_and_borrows_style_and_regions_from_them(tmp_path, model):
    generator = tiny_stylegan2()
    borrowed = np.random.default_rng(2).standard_normal(generator.w_dim).astype(np.float32)
    write_latent_file(tmp_path / "me.npz", LatentFile(w=borrowed))
    assert main(["render", str(model), "--latent", str(tmp_path / "me.npz"), "-q",
                 "-o", str(tmp_path / "{name}.png")]) == 0
    assert np.array_equal(read_png_scene(tmp_path / "me.png").w, borrowed)
    assert main(["render", str(model), "--seeds", "5", "--style-from", str(tmp_path / "me.npz"),
                 "--style-rows", "0-1", "--resample-from", str(tmp_path / "me.npz"),
                 "--resample-layer", "b16.conv1", "--resample-box", "0,0,1,0.5", "-q",
                 "-o", str(tmp_path / "mix{seed}.png")]) == 0
    mix, resample = read_png_scene(tmp_path / "mix5.png").edits
    assert (mix.first, mix.last, mix.source) == (0, 1, "me.npz") and np.array_equal(mix.w, borrowed)
    assert resample.layer == "b16.conv1" and np.array_equal(resample.w, borrowed)
    assert resample.mask.shapes[0] == Rect(0.0, 0.0, 1.0, 0.5)


def test_batched_renders_keep_each_latent_files_noise_maps(tmp_path, model):
    from PIL import Image

    generator = tiny_stylegan2()
    rng = np.random.default_rng(4)
    for name in "ab":
        noise = {k: rng.standard_normal(tuple(v.shape)).astype(np.float32)
                 for k, v in generator.stored_noise().items()}
        write_latent_file(tmp_path / f"{name}.npz", LatentFile(w=np.asarray(generator.w_avg), noise=noise))
    assert main(["render", str(model), "--latent", str(tmp_path / "a.npz"), "--latent",
                 str(tmp_path / "b.npz"), "--batch-size", "2", "--workers", "1", "-q",
                 "-o", str(tmp_path / "{name}.png")]) == 0
    for name in "ab":
        scene = read_png_scene(tmp_path / f"{name}.png")
        expected = Renderer(generator, "cpu").render(scene).image
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / f"{name}.png").convert("RGB")), expected)


@pytest.mark.parametrize("flags", [["--latent", "{f}"], ["--seeds", "1", "--style-from", "{f}"],
                                   ["--seeds", "1", "--resample-from", "{f}", "--resample-layer",
                                    "b16.conv1"]])
def test_render_refuses_a_latent_found_with_another_model_in_one_line(tmp_path, model, capsys, flags):
    generator = tiny_stylegan2()
    other = tmp_path / "other.npz"
    write_latent_file(other, LatentFile(w=np.asarray(generator.w_avg), model_hash="ab" * 32))
    argv = [flag.format(f=other) for flag in flags]
    assert main(["render", str(model), *argv, "-q", "-o", str(tmp_path / "out" / "{name}.png")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{other}: made for another model (abababababab…)" in err
    assert not (tmp_path / "out").exists()


def test_render_applies_recipes_to_a_projected_pictures_latent(tmp_path, model, capsys):
    """`render --latent me.npz --recipe R`: the recipe's edits on the projected latent, as the
    renderer draws that scene; a recipe made for another model is refused in one line."""
    import dataclasses

    from PIL import Image

    from ganinterface.engine.kinds import FeatureEdit
    from ganinterface.engine.scene import Recipe

    generator = tiny_stylegan2()
    w = np.random.default_rng(6).standard_normal(generator.w_dim).astype(np.float32)
    write_latent_file(tmp_path / "me.npz", LatentFile(w=w, model_hash=generator_hash(generator)))
    edit = FeatureEdit("b16.conv1", (0, 3), Mask((Rect(0.2, 0.5, 0.8, 0.9),)), 2.5, name="wider")
    (tmp_path / "wider.json").write_text(Recipe(edits=(edit,), name="wider",
                                                model_hash=generator_hash(generator)).to_json())
    assert main(["render", str(model), "--latent", str(tmp_path / "me.npz"), "--recipe",
                 str(tmp_path / "wider.json"), "-q", "-o", str(tmp_path / "{name}.png")]) == 0
    expected = Renderer(generator, "cpu").render(Scene(w=w, edits=(edit,))).image
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "me.png").convert("RGB")), expected)
    assert read_png_scene(tmp_path / "me.png").edits == (edit,)
    assert main(["render", str(model), "--latent", str(tmp_path / "me.npz"), "--recipe",
                 f"{tmp_path / 'wider.json'}:0.5", "-q", "-o", str(tmp_path / "half.png")]) == 0
    half = dataclasses.replace(edit, amount=1.25)
    expected = Renderer(generator, "cpu").render(Scene(w=w, edits=(half,))).image
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "half.png").convert("RGB")), expected)
    assert main(["render", str(model), "--latent", str(tmp_path / "me.npz"), "--recipe",
                 str(tmp_path / "wider.json"), "--keep-rest", "-q", "-o", str(tmp_path / "kept.png")]) == 0
    kept = dataclasses.replace(edit, keep_rest=True)
    assert read_png_scene(tmp_path / "kept.png").edits == (kept,)
    expected = Renderer(generator, "cpu").render(Scene(w=w, edits=(kept,))).image
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "kept.png").convert("RGB")), expected)

    (tmp_path / "other.json").write_text(Recipe(edits=(edit,), model_hash="ab" * 32).to_json())
    assert main(["render", str(model), "--latent", str(tmp_path / "me.npz"), "--recipe",
                 str(tmp_path / "other.json"), "-q", "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err.strip()
    assert "other.json: made for another model" in err and "\n" not in err
    assert not (tmp_path / "x.png").exists()


def test_render_checks_a_recipe_against_the_model_each_scene_names(tmp_path, model, capsys):
    """A scene saved with another checkpoint, rendered without a CKPT argument, takes a recipe made
    for that checkpoint (it was checked against the built-in model and refused) and refuses one
    made for the built-in model."""
    from PIL import Image

    from ganinterface.engine.kinds import FeatureEdit
    from ganinterface.engine.scene import Recipe
    from ganinterface.models import load_generator

    generator = tiny_stylegan2()
    scene = Scene(seed=3, checkpoint=str(model))
    (tmp_path / "mine.json").write_text(scene.to_json())
    edit = FeatureEdit("b16.conv1", (1,), Mask((Rect(0.0, 0.0, 1.0, 0.5),)), 3.0)
    (tmp_path / "tiny-recipe.json").write_text(Recipe(edits=(edit,), model_hash=generator_hash(generator)).to_json())
    assert main(["render", "--scene", str(tmp_path / "mine.json"), "--recipe",
                 str(tmp_path / "tiny-recipe.json"), "-q", "-o", str(tmp_path / "{name}.png")]) == 0
    expected = Renderer(generator, "cpu").render(scene.replace(edits=(edit,))).image
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "mine.png").convert("RGB")), expected)

    builtin = generator_hash(load_generator(None))
    (tmp_path / "builtin-recipe.json").write_text(Recipe(edits=(edit,), model_hash=builtin).to_json())
    assert main(["render", "--scene", str(tmp_path / "mine.json"), "--recipe",
                 str(tmp_path / "builtin-recipe.json"), "-q", "-o", str(tmp_path / "x.png")]) == 1
    assert "builtin-recipe.json: made for another model" in capsys.readouterr().err


def test_project_fits_a_detail_map_by_default_and_every_command_renders_it(tmp_path, model):
    from PIL import Image

    _picture(tmp_path / "me.png")
    assert main(["project", str(tmp_path / "me.png"), str(model), "--steps", "6", "-q",
                 "-o", str(tmp_path / "out/{name}.npz")]) == 0
    generator = tiny_stylegan2()
    latent = read_latent_file(tmp_path / "out/me.npz", generator, generator_hash(generator))
    assert list(latent.detail) == ["b4.conv1"] and latent.detail["b4.conv1"].shape == (8, 4, 2)
    assert np.abs(latent.detail["b4.conv1"]).max() > 0
    scene = read_png_scene(tmp_path / "out/me.png")  # the reconstruction carries the map
    assert np.array_equal(scene.detail_maps["b4.conv1"], latent.detail["b4.conv1"])
    with_map = Renderer(generator, "cpu").render(scene).image
    assert not np.array_equal(with_map, Renderer(generator, "cpu").render(scene.replace(detail_maps=None)).image)
    assert main(["render", str(model), "--latent", str(tmp_path / "out/me.npz"), "-q",
                 "-o", str(tmp_path / "again/{name}.png")]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "again/me.png").convert("RGB")), with_map)
    # a morph from the picture to a latent without a map: the map fades out with the latent
    write_latent_file(tmp_path / "plain.npz", LatentFile(w=latent.w))
    assert main(["animate", str(model), "--latents", str(tmp_path / "out/me.npz"), str(tmp_path / "plain.npz"),
                 "--frames", "3", "-q", "-o", str(tmp_path / "frames")]) == 0
    first, middle, last = (np.asarray(Image.open(p).convert("RGB"))
                           for p in sorted((tmp_path / "frames").glob("frame_*.png")))
    assert np.array_equal(first, with_map)
    half = scene.replace(detail_maps={"b4.conv1": latent.detail["b4.conv1"] * np.float32(0.5)})
    assert np.array_equal(middle, Renderer(generator, "cpu").render(half).image)
    assert np.array_equal(last, Renderer(generator, "cpu").render(scene.replace(detail_maps=None)).image)
    assert main(["project", str(tmp_path / "me.png"), str(model), "--steps", "6", "--no-detail", "-q",
                 "-o", str(tmp_path / "plain/{name}.npz")]) == 0
    assert read_latent_file(tmp_path / "plain/me.npz", generator).detail is None
    assert read_png_scene(tmp_path / "plain/me.png").detail_maps is None


def test_animate_blends_the_latent_files_noise_maps(tmp_path, model, capsys):
    from PIL import Image

    generator = tiny_stylegan2()
    stored = {name: v.numpy() for name, v in generator.stored_noise().items()}
    name = sorted(stored)[0]
    w = np.asarray(generator.w_avg)
    mine = np.full(stored[name].shape, 3.0, np.float32)
    write_latent_file(tmp_path / "noisy.npz", LatentFile(w=w, noise={name: mine}))
    write_latent_file(tmp_path / "plain.npz", LatentFile(w=w))
    assert main(["animate", str(model), "--latents", str(tmp_path / "noisy.npz"), str(tmp_path / "plain.npz"),
                 "--frames", "3", "-q", "-o", str(tmp_path / "frames")]) == 0
    frames = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((tmp_path / "frames").glob("frame_*.png"))]
    renderer = Renderer(generator, "cpu")
    expected = [renderer.render(Scene(w=w, noise_maps={name: noise})).image
                for noise in (mine, (mine + stored[name]) / 2)] + [renderer.render(Scene(w=w)).image]
    assert all(np.array_equal(frame, want) for frame, want in zip(frames, expected))
    assert not np.array_equal(frames[0], frames[2])  # the noise map shows
    wrong = np.zeros((3, 3), np.float32)
    write_latent_file(tmp_path / "wrong.npz", LatentFile(w=w, noise={name: wrong}))
    assert main(["animate", str(model), "--latents", str(tmp_path / "wrong.npz"), str(tmp_path / "plain.npz"),
                 "--frames", "3", "-q", "-o", str(tmp_path / "frames2")]) == 1
    assert f"wrong.npz: noise.{name}" in capsys.readouterr().err
