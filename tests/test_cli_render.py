import os

import numpy as np
import pytest
import torch
from PIL import Image

from ganinterface.cli import main
from ganinterface.engine.colormap import feature_grid_image
from ganinterface.engine.latents import z_from_seed
from ganinterface.engine.renderer import Renderer
from ganinterface.engine.kinds import FeatureEdit
from ganinterface.engine.scene import Mask, Rect, Scene
from ganinterface.export.images import read_png_scene
from ganinterface.models.native import save_native
from tiny_models import tiny_stylegan2


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_native(tiny_stylegan2(), path)
    return path


def _reference(seed, psi):
    """Straight from the generator, as gen_images.py would do it."""
    generator = tiny_stylegan2()
    with torch.no_grad():
        ws = generator.mapping(torch.from_numpy(z_from_seed(seed, generator.z_dim)), None,
                               truncation_psi=psi)
        return generator.synthesize(ws, noise_mode="const").image[0].numpy()


def test_render_npy_is_the_raw_generator_output(tmp_path, checkpoint):
    code = main(["render", str(checkpoint), "--seeds", "0,2", "--trunc", "0.7",
                 "-o", str(tmp_path / "out" / "seed{seed}.npy")])
    assert code == 0
    for seed in (0, 2):
        raw = np.load(tmp_path / "out" / f"seed{seed}.npy")
        assert raw.dtype == np.float32 and raw.shape == (3, 16, 8)
        np.testing.assert_allclose(raw, _reference(seed, 0.7), atol=1e-6)


def test_render_png_carries_its_scene(tmp_path, checkpoint):
    assert main(["render", str(checkpoint), "--seeds", "3", "-o", str(tmp_path / "a.png")]) == 0
    image = np.asarray(Image.open(tmp_path / "a.png"))
    expected = np.clip(np.floor(_reference(3, 1.0).transpose(1, 2, 0) * 127.5 + 128), 0, 255)
    np.testing.assert_array_equal(image, expected.astype(np.uint8))
    scene = read_png_scene(tmp_path / "a.png")
    assert scene.seed == 3 and scene.checkpoint == str(checkpoint.resolve())


def test_scene_file_renders_the_windows_pixels(tmp_path, checkpoint):
    edit = FeatureEdit("b8.conv1", (0, 2), Mask((Rect(0.2, 0.2, 0.7, 0.6, softness=0.5),)), 3.0)
    scene = Scene(checkpoint=str(checkpoint), seed=5, truncation_psi=0.8, edits=(edit,))
    (tmp_path / "edited.json").write_text(scene.to_json())
    assert main(["render", "--scene", str(tmp_path / "edited.json"),
                 "-o", str(tmp_path / "{name}.png")]) == 0
    direct = Renderer(tiny_stylegan2(), "cpu").render(scene)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "edited.png")), direct.image)
    # and the PNG can be rendered again as a scene
    assert main(["render", "--scene", str(tmp_path / "edited.png"),
                 "-o", str(tmp_path / "again.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "again.npy"), direct.raw)


def test_features_grid_and_npy(tmp_path, checkpoint):
    assert main(["features", str(checkpoint), "--seeds", "4", "--layer", "b8.conv1",
                 "--scale", "channel", "-o", str(tmp_path / "grid.png")]) == 0
    assert main(["features", str(checkpoint), "--seeds", "4", "--layer", "b8.conv1",
                 "-o", str(tmp_path / "grid.npy")]) == 0
    features = Renderer(tiny_stylegan2(), "cpu").render(Scene(seed=4), ["b8.conv1"]).features["b8.conv1"]
    np.testing.assert_array_equal(np.load(tmp_path / "grid.npy"), features)
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    np.testing.assert_array_equal(grid, feature_grid_image(features, "channel"))


@pytest.mark.parametrize("argv, message", [
    (["render", "{ckpt}", "--seeds", "0-2", "-o", "{tmp}/same.png"], "same file"),
    (["render", "{ckpt}", "--seeds", "0", "-o", "{tmp}/x.jpg"], "must end in .png or .npy"),
    (["render", "{ckpt}", "--seeds", "0", "-o", "{tmp}/{colour}.png"], "not usable"),
    (["render", "{ckpt}", "--seeds", "3-1"], "backwards"),
    (["render", "{ckpt}", "--class", "2", "-o", "{tmp}/c.png"], "unconditional"),
    (["render", "{ckpt}", "--device", "tpu"], "unknown device 'tpu'"),
    (["render", "{tmp}/missing.pkl"], "missing.pkl"),
    (["render", "{ckpt}", "--scene", "{tmp}/none.json"], "none.json: no such scene file"),
    (["render", "{ckpt}", "--scene", "{tmp}/s.json", "--trunc", "0.5"], "--trunc cannot be combined"),
    (["render", "{ckpt}", "-o", "{tmp}/blocker/x.png"], "cannot write"),
    (["features", "{ckpt}", "--layer", "b9.conv1", "-o", "{tmp}/g.png"],
     "no layer named 'b9.conv1'; layers are: b4.conv1, b4.torgb, b8.conv0"),
    (["features", "{ckpt}", "--layer", "b8.conv1", "--palette", "rainbow"], "unknown palette"),
])
def test_user_errors_are_one_line(tmp_path, checkpoint, capsys, argv, message):
    (tmp_path / "blocker").write_text("a file where a directory should be")
    (tmp_path / "s.json").write_text(Scene().to_json())
    argv = [a.replace("{ckpt}", str(checkpoint)).replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert not any(p.name.endswith(".tmp") for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("field, value", [("truncation_psi", "NaN"), ("truncation_psi", "Infinity")])
def test_a_scene_file_with_a_non_finite_number_is_refused_and_nothing_written(tmp_path, checkpoint,
                                                                            capsys, field, value):
    text = Scene(seed=1).to_json().replace(f'"{field}": 1.0', f'"{field}": {value}')
    assert value in text
    (tmp_path / "bad.json").write_text(text)
    assert main(["render", str(checkpoint), "--scene", str(tmp_path / "bad.json"),
                 "-o", str(tmp_path / "out.png")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"ganinterface render: error: {tmp_path / 'bad.json'}: scene.{field} must be "
                   f"finite, got {float(value)}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


def test_render_says_which_files_it_wrote_on_stdout(tmp_path, checkpoint, capsys):
    assert main(["render", str(checkpoint), "--seeds", "1,2", "-o", str(tmp_path / "s{seed}.png")]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"wrote {tmp_path / 's1.png'}", f"wrote {tmp_path / 's2.png'}"]
    assert "wrote" not in err


def test_a_batch_is_summed_up_in_one_line_and_quiet_prints_nothing(tmp_path, checkpoint, capsys):
    assert main(["render", str(checkpoint), "--seeds", "0-5", "-o",
                 str(tmp_path / "out" / "seed{seed}.npy")]) == 0
    out, err = capsys.readouterr()
    assert out == f"wrote 6 arrays to {tmp_path / 'out'}{os.sep} (seed0.npy … seed5.npy)\n"
    assert "render" in err  # the progress bar, on stderr
    assert main(["features", str(checkpoint), "--seeds", "0-5", "--layer", "b8.conv1", "-q",
                 "-o", str(tmp_path / "grids" / "{seed}.png")]) == 0
    assert capsys.readouterr() == ("", "")
    assert len(os.listdir(tmp_path / "grids")) == 6


def test_render_moves_along_direction_files_w_and_style_space(tmp_path, checkpoint, capsys):
    from ganinterface.engine.directions import StyleDirection, save_style_direction
    from ganinterface.engine.kinds import DirectionEdit, StyleChannelEdit

    vector = np.linspace(-1, 1, 8).astype(np.float32)
    np.save(tmp_path / "smile.npy", vector)
    offsets = (("b8.conv1", 2, 1.5), ("b16.conv0", 0, -0.5))
    save_style_direction(tmp_path / "band.json", StyleDirection(offsets))
    assert main(["render", str(checkpoint), "--seeds", "4", "--direction", f"{tmp_path / 'smile.npy'}:-2",
                 "--direction", str(tmp_path / "band.json"), "-o", str(tmp_path / "moved.npy")]) == 0
    edits = (DirectionEdit(vector, -2.0), StyleChannelEdit(offsets, 1.0))
    expected = Renderer(tiny_stylegan2(), "cpu").render(Scene(seed=4, edits=edits)).raw
    np.testing.assert_allclose(np.load(tmp_path / "moved.npy"), expected, atol=1e-5)
    save_style_direction(tmp_path / "far.json", StyleDirection((("b8.conv1", 9, 1.0),)))
    assert main(["render", str(checkpoint), "--direction", str(tmp_path / "far.json"),
                 "-o", str(tmp_path / "far.png")]) != 0
    error = capsys.readouterr().err.strip()
    assert "far.json: offsets style 9 of b8.conv1" in error and "\n" not in error
