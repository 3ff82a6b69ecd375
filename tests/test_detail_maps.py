"""Detail maps: what a projection adds to one layer's features to draw the picture's fine detail.
The search that fits them, the renderer that draws them (and its cache), scenes, latent files and
morphs that carry them."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from ganinterface.engine.animation import LatentKeyframe, morph
from ganinterface.engine.kinds import FeatureEdit
from ganinterface.engine.projection import (MAX_DETAIL_VALUES, ProjectionSettings, detail_layer, project,
                                            psnr)
from ganinterface.engine.renderer import Renderer, RenderError
from ganinterface.engine.scene import Mask, Rect, Scene, SceneFormatError
from ganinterface.export.userfiles import LatentFile, UserFileError, read_latent_file, write_latent_file
from ganinterface.models.base import LayerInfo, with_detail
from ganinterface.models.stylegan2 import StyleGAN2Generator
from tiny_models import tiny_stylegan2, tiny_stylegan3


def tiny_32px() -> StyleGAN2Generator:
    """32 x 16 StyleGAN2: the first block's maps are 1/8 of the image high."""
    torch.manual_seed(0)
    generator = StyleGAN2Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=32, img_channels=3,
                                   img_width=16, mapping_kwargs={"num_layers": 2},
                                   channels={4: 8, 8: 6, 16: 4, 32: 4})
    with torch.no_grad():
        for name, parameter in generator.named_parameters():
            if name.endswith(".bias"):
                parameter.normal_(0.0, 0.2)
    return generator.eval()


def _ws(generator, seed=1):
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, generator.z_dim).astype(np.float32))
    with torch.no_grad():
        return generator.mapping(z)


def _map(generator, layer, seed=2, scale=0.5):
    info = generator.layers[generator.layer_index(layer)]
    return (scale * np.random.RandomState(seed).randn(info.channels, info.height, info.width)).astype(np.float32)


def _adding_hooks(detail, then=None):
    """The test's own hooks: each map added to its layer's output (then ``then`` applied)."""
    def hook(value):
        def apply(x):
            x = x + torch.from_numpy(value)
            return x if then is None else then(x)
        return apply
    return {name: hook(value) for name, value in detail.items()}


def _image(generator, ws, hooks=None):
    with torch.no_grad():
        return generator.synthesize(ws, hooks=hooks or {}).image


# ---- which layer ----------------------------------------------------------------------------------

def test_the_detail_layer_is_the_last_convolution_at_an_eighth_of_the_height_or_the_coarsest():
    def layers(*rows, channels=4, height=128):
        return types.SimpleNamespace(img_height=height, layers=[LayerInfo(n, channels, h, h // 2, (0,), k)
                                                                for n, h, k in rows])
    assert detail_layer(layers(("a", 8, "conv"), ("b", 16, "conv"), ("c", 16, "torgb"),
                               ("d", 32, "conv"))) == "b"
    assert detail_layer(layers(("a", 32, "conv"), ("b", 32, "conv"), ("c", 64, "conv"))) == "b"
    # a 1024 px model of 512 channels: 128 px maps would be 4M values each, 32 px ones 262k
    big = layers(("b32.conv1", 32, "conv"), ("b64.conv1", 64, "conv"), ("b128.conv1", 128, "conv"),
                 channels=512, height=1024)
    assert 512 * 32 * 16 <= MAX_DETAIL_VALUES < 512 * 64 * 32
    assert detail_layer(big) == "b32.conv1"
    assert detail_layer(tiny_32px()) == "b4.conv1"
    assert detail_layer(tiny_stylegan2()) == "b4.conv1"  # 16 px high: nothing at 2 px


# ---- synthesis ------------------------------------------------------------------------------------

def test_with_detail_adds_the_map_in_the_outputs_dtype_and_layout_before_the_layers_own_hook():
    value = torch.arange(6, dtype=torch.float32).reshape(2, 1, 3) / 4
    x = torch.ones(1, 2, 1, 3, dtype=torch.bfloat16).contiguous(memory_format=torch.channels_last)
    seen = []
    hooks = with_detail({"a": lambda y: seen.append(y.clone()) or y * 2}, {"a": value, "b": value})
    out = hooks["a"](x)
    assert torch.equal(seen[0].float(), 1 + value[None].to(torch.bfloat16).float())
    assert torch.equal(out, seen[0] * 2) and out.dtype == torch.bfloat16
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x, torch.ones_like(x))  # the layer's output itself is left alone
    assert torch.equal(hooks["b"](x).float(), (1 + value[None].to(torch.bfloat16)).float())


def test_a_scene_with_detail_renders_as_the_map_added_to_its_layer():
    generator = tiny_32px()
    ws = _ws(generator)
    detail = {"b8.conv0": _map(generator, "b8.conv0")}
    renderer = Renderer(generator, "cpu")
    plain = renderer.render(Scene(w=ws[0].numpy()))
    shown = renderer.render(Scene(w=ws[0].numpy(), detail_maps=detail))
    expected = _image(generator, ws, _adding_hooks(detail))
    assert np.allclose(shown.raw, expected[0].numpy(), atol=1e-6)
    assert not np.allclose(shown.raw, plain.raw, atol=1e-3)  # the map matters
    assert shown.first_layer == 0  # another detail map: nothing of the plain render's is reused


def test_edits_after_and_at_the_detail_layer_act_on_the_sum_and_reuse_the_cache():
    generator = tiny_32px()
    ws = _ws(generator)
    detail = {"b8.conv0": _map(generator, "b8.conv0")}
    renderer = Renderer(generator, "cpu")
    scene = Scene(w=ws[0].numpy(), detail_maps=detail)
    renderer.render(scene)
    mask = Mask(shapes=(Rect(0.2, 0.2, 0.8, 0.6),))
    for layer in ("b16.conv1", "b8.conv0"):
        edit = FeatureEdit(layer=layer, channels=(1,), amount=1.5, mask=mask)
        shown = renderer.render(scene.replace(edits=(edit,)))
        alone = Renderer(generator, "cpu").render(scene.replace(edits=(edit,)))
        assert np.array_equal(shown.image, alone.image)  # the cache gives what a fresh pass gives
        assert shown.first_layer > 0
        without = Renderer(generator, "cpu").render(Scene(w=ws[0].numpy(), edits=(edit,)))
        assert not np.array_equal(shown.image, without.image)
    moved = renderer.render(scene.replace(detail_maps={"b8.conv0": _map(generator, "b8.conv0", seed=5)}))
    assert not np.allclose(moved.raw, renderer.render(scene).raw, atol=1e-3)  # not a stale cache entry


def test_a_detail_map_of_the_wrong_shape_or_layer_is_an_error_naming_it():
    generator = tiny_32px()
    renderer = Renderer(generator, "cpu")
    w = _ws(generator)[0].numpy()
    wrong = renderer.render(Scene(w=w, detail_maps={"b8.conv0": np.zeros((6, 4, 4), np.float32)}))
    assert wrong.error == ("the detail map of layer b8.conv0 has shape (6, 4, 4); "
                           "this model's layer holds (6, 8, 4)")
    unknown = renderer.render(Scene(w=w, detail_maps={"b9.conv0": np.zeros((6, 8, 4), np.float32)}))
    assert unknown.error.startswith("detail map: no layer named 'b9.conv0'")
    with pytest.raises(RenderError, match="one at a time"):
        renderer.render_batch([Scene(w=w, detail_maps={"b8.conv0": _map(generator, "b8.conv0")})])


# ---- the search ------------------------------------------------------------------------------------

def test_a_projection_with_detail_comes_closer_and_renders_what_it_reports():
    generator = tiny_32px()
    ws = _ws(generator)
    # a picture the latent alone cannot draw: the generator's own, with a map added at b4.conv1
    target = _image(generator, ws, _adding_hooks({"b4.conv1": _map(generator, "b4.conv1", scale=1.5)}))
    settings = ProjectionSettings(space="w+", steps=60, fast=False, feature_level=0)
    assert settings.detail  # the default
    found = project(generator, target, settings, start_w=ws)
    plain = project(generator, target, ProjectionSettings(**{**settings.__dict__, "detail": False}), start_w=ws)
    assert plain.detail is None and list(found.detail) == ["b4.conv1"]
    assert found.detail["b4.conv1"].shape == (8, 4, 2) and not found.detail["b4.conv1"].requires_grad
    assert found.psnr > plain.psnr + 3
    detail = {name: value.numpy() for name, value in found.detail.items()}
    rendered = _image(generator, found.ws(generator.num_ws), _adding_hooks(detail))
    assert found.psnr == pytest.approx(psnr(rendered, target), abs=1e-4)


@pytest.mark.slow
def test_the_detail_weight_holds_the_map_small():
    generator = tiny_32px()
    target = torch.from_numpy(np.random.RandomState(4).uniform(-1, 1, (1, 3, 32, 16)).astype(np.float32))
    sizes = []
    for weight in (0.0, 10.0):
        found = project(generator, target, ProjectionSettings(steps=30, candidates=0, fast=False,
                                                              detail=True, detail_weight=weight),
                        start_w=_ws(generator))
        sizes.append(found.detail["b4.conv1"].square().mean().item())
    assert sizes[1] < 0.5 * sizes[0]


def test_a_stylegan3_projection_fits_detail_too():
    generator = tiny_stylegan3()
    found = project(generator, torch.zeros(1, 3, 16, 16), ProjectionSettings(steps=10, candidates=0, detail=True))
    (name, value), = found.detail.items()
    info = generator.layers[generator.layer_index(name)]
    assert value.shape == (info.channels, info.height, info.width) and value.abs().sum() > 0


def test_a_negative_detail_weight_is_refused():
    with pytest.raises(ValueError, match="detail_weight"):
        ProjectionSettings(detail_weight=-1.0)


# ---- files and morphs -----------------------------------------------------------------------------

def test_a_scene_with_detail_maps_round_trips_and_a_flat_map_is_refused():
    scene = Scene(w=np.ones(8, np.float32), detail_maps={"b8.conv0": np.full((2, 3, 4), 0.25, np.float32)})
    back = Scene.from_json(scene.to_json())
    assert back == scene and np.array_equal(back.detail_maps["b8.conv0"], scene.detail_maps["b8.conv0"])
    assert "detail_maps" not in Scene().to_dict()  # scenes without stay as they were
    flat = scene.to_dict()
    flat["detail_maps"] = Scene(noise_maps={"b8.conv0": np.zeros((3, 4), np.float32)}).to_dict()["noise_maps"]
    with pytest.raises(SceneFormatError, match=r"detail_maps\['b8.conv0'\] should hold \(channels, height, width\)"):
        Scene.from_dict(flat)


def test_a_latent_file_with_detail_round_trips_and_is_checked_against_the_models_layers(tmp_path):
    generator = tiny_32px()
    value = _map(generator, "b4.conv1")
    path = tmp_path / "me.npz"
    write_latent_file(path, LatentFile(w=_ws(generator)[0].numpy(), detail={"b4.conv1": value}))
    assert np.array_equal(read_latent_file(path, generator).detail["b4.conv1"], value)
    write_latent_file(path, LatentFile(w=_ws(generator)[0].numpy(),
                                       detail={"b8.conv0": np.zeros((5, 8, 4), np.float32)}))
    with pytest.raises(UserFileError) as error:
        read_latent_file(path, generator)
    assert str(error.value) == (f"{path}: detail.b8.conv0 holds 5 channels of 4 × 8; this model's "
                                "layer b8.conv0 has 6 of 4 × 8")
    write_latent_file(path, LatentFile(w=_ws(generator)[0].numpy(), detail={"b5.conv1": value}))
    with pytest.raises(UserFileError, match=r"detail.b5.conv1: this model has no layer 'b5.conv1'"):
        read_latent_file(path, generator)
    bad = value.copy()
    bad[0, 0, 0] = np.nan
    write_latent_file(path, LatentFile(w=_ws(generator)[0].numpy(), detail={"b4.conv1": bad}))
    with pytest.raises(UserFileError, match="detail.b4.conv1 contains NaN"):
        read_latent_file(path, generator)


def test_a_morph_blends_the_detail_maps_with_the_latents():
    a, b = np.zeros((6, 8), np.float32), np.ones((6, 8), np.float32)
    map_a = np.full((2, 3, 4), 4.0, np.float32)
    frames = morph(Scene(), [LatentKeyframe(a, {"x": map_a}), b], 5, 6)
    assert [float(f.w[0, 0]) for f in frames] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert [float(f.detail_maps["x"][1, 2, 3]) for f in frames] == [4.0, 3.0, 2.0, 1.0, 0.0]
    assert all(f.detail_maps is None for f in morph(Scene(detail_maps={"x": map_a}), [a, b], 3, 6))
