"""On a CUDA GPU the renderer (and the window's render thread) gives what the CPU gives: float32
with TF32 off within 1e-3, start-from-k equal to a full render, every edit kind, and drafts in half
precision that stay the picture.  Skipped without a GPU (``pytest -m cuda`` runs only these)."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from ganinterface.engine.kinds import (DirectionEdit, FeatureCopy, FeatureEdit, RegionResample,
                                       StyleMix, kind_of)
from ganinterface.engine.renderer import Renderer
from ganinterface.engine.scene import Anchor, Mask, Rect, Scene, Stroke
from ganinterface.models.stylegan2 import StyleGAN2Generator
from tiny_models import tiny_stylegan2, tiny_stylegan3

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

MASK = Mask((Rect(0.2, 0.3, 0.7, 0.8, softness=0.3),))
EDGE = Mask((Stroke(((0.7, 0.1), (1.2, 0.4)), radius=0.15, softness=0.4),))


@pytest.fixture(autouse=True)
def _exact_float32():
    """TF32 would round convolution inputs to 10 mantissa bits; parity is about float32."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.backends.cudnn.deterministic)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    yield
    (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
     torch.backends.cudnn.deterministic) = saved


def _clamped_64px() -> StyleGAN2Generator:
    """64 px, 5 blocks, conv_clamp 256 (so float16 drafts are allowed), noise that matters."""
    torch.manual_seed(3)
    g = StyleGAN2Generator(z_dim=32, c_dim=0, w_dim=32, img_resolution=64, img_channels=3,
                           mapping_kwargs={"num_layers": 2}, channel_base=2048, channel_max=64,
                           conv_clamp=256)
    with torch.no_grad():
        for name, parameter in g.named_parameters():
            if name.endswith("noise_strength"):
                parameter.fill_(0.3)
        g.mapping_network.w_avg.normal_()
    return g.eval()


MODELS = {"stylegan2": tiny_stylegan2, "stylegan2-64px": _clamped_64px, "stylegan3": tiny_stylegan3}


def _pair(make):
    """The same model rendered on the CPU and on the GPU (a renderer moves its generator)."""
    generator = make()
    return Renderer(copy.deepcopy(generator), "cpu"), Renderer(generator, "cuda")


def _assert_same(cpu, gpu):
    assert cpu.error is None and gpu.error is None, (cpu.error, gpu.error)
    np.testing.assert_allclose(gpu.raw, cpu.raw, atol=1e-3, rtol=0)
    assert np.abs(gpu.image.astype(int) - cpu.image.astype(int)).max() <= 1
    for name, features in cpu.features.items():
        np.testing.assert_allclose(gpu.features[name], features, atol=1e-3, rtol=0)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_the_gpu_renders_what_the_cpu_renders(model):
    cpu, gpu = _pair(MODELS[model])
    tap = cpu.generator.layers[len(cpu.generator.layers) // 2].name
    for scene in (Scene(seed=0), Scene(seed=5, truncation_psi=0.7),
                  Scene(seed=2, noise_mode="random", noise_seed=9)):
        _assert_same(cpu.render(scene, [tap]), gpu.render(scene, [tap]))


def _one_of_each(generator) -> tuple:
    wide = [layer.name for layer in generator.layers if layer.channels >= 4]  # not ToRGB
    late, middle = wide[-1], wide[len(wide) // 2]
    return (FeatureEdit(middle, (0, 1, 3), EDGE, 1.5, anchor=Anchor(wide[0], (0, 2), 0.5, 0.5)),
            FeatureCopy(late, MASK, scale=0.6, amount=0.9),
            DirectionEdit(np.linspace(-1, 1, generator.w_dim).astype(np.float32), 1.5, first=1),
            StyleMix(seed=9, first=generator.num_ws - 2),
            RegionResample(middle, MASK, seed=3))


@pytest.mark.parametrize("model", ["stylegan2", "stylegan2-64px", "stylegan3"])
def test_every_edit_kind_renders_the_same_on_the_gpu(model):
    cpu, gpu = _pair(MODELS[model])
    edits = _one_of_each(cpu.generator)
    for count in range(1, len(edits) + 1):
        scene = Scene(seed=4, edits=edits[:count])
        _assert_same(cpu.render(scene), gpu.render(scene))


@pytest.mark.parametrize("model", ["stylegan2", "stylegan2-64px"])
def test_edits_keeping_the_rest_render_the_same_on_the_gpu(model):
    cpu, gpu = _pair(MODELS[model])
    edits = tuple(dataclasses.replace(e, keep_rest=True) if kind_of(e).can_keep_rest else e
                  for e in _one_of_each(cpu.generator))
    scene = Scene(seed=4, edits=edits)
    _assert_same(cpu.render(scene), gpu.render(scene))
    batch = gpu.render_batch([scene.replace(edits=edits[:2]), Scene(seed=6, edits=edits[:2])])
    _assert_same(cpu.render(scene.replace(edits=edits[:2])), batch[0])


def test_starting_from_every_layer_equals_a_full_render_on_the_gpu():
    generator = _clamped_64px()
    gpu = Renderer(generator, "cuda")
    base = Scene(seed=1)
    gpu.render(base)
    for k, layer in enumerate(generator.layers):
        channels = tuple(range(min(3, layer.channels)))
        scene = base.replace(edits=(FeatureEdit(layer.name, channels, MASK, 0.8),))
        cached = gpu.render(scene)
        assert cached.first_layer == k
        fresh = Renderer(generator, "cuda").render(scene)
        np.testing.assert_allclose(cached.raw, fresh.raw, atol=1e-5, rtol=0)


def test_drafts_on_the_gpu_are_half_precision_and_stay_the_picture():
    generator = _clamped_64px()  # smaller than drafts pay for by default: asked for
    cpu, gpu = Renderer(copy.deepcopy(generator), "cpu"), Renderer(generator, "cuda", fast=True)
    assert gpu.fast_dtype in (torch.float16, torch.bfloat16)
    for seed in range(4):
        scene = Scene(seed=seed, edits=(FeatureEdit("b32.conv1", (0, 1), MASK, 1.0),))
        draft, exact = gpu.render(scene, draft=True), cpu.render(scene)
        assert draft.draft and draft.error is None
        assert np.abs(draft.raw - exact.raw).max() <= 2e-2 * np.abs(exact.raw).max()


def test_results_are_host_arrays_of_their_own():
    gpu = Renderer(tiny_stylegan2(), "cuda")
    first = gpu.render(Scene(seed=1), ["b8.conv1"])
    kept = first.image.copy(), first.features["b8.conv1"].copy()
    gpu.render(Scene(seed=2), ["b8.conv1"])
    assert isinstance(first.image, np.ndarray) and first.image.dtype == np.uint8
    assert first.features["b8.conv1"].dtype == np.float32
    np.testing.assert_array_equal(first.image, kept[0])
    np.testing.assert_array_equal(first.features["b8.conv1"], kept[1])


def test_the_windows_render_thread_renders_on_the_gpu(qtbot, tmp_path):
    from ganinterface.ui.canvas import Tool
    from ganinterface.ui.model_loading import LoadedModel, shape_of
    from ui_support import drag, open_window, tiny_generator

    generator = copy.deepcopy(tiny_generator())

    def gpu_loader(path):
        return LoadedModel(Renderer(generator, "cuda"), shape_of(generator, "tiny"), None)

    with open_window(qtbot, tmp_path, force_sync=False, loader=gpu_loader) as window:
        assert window.model.renderer.device.type == "cuda"
        window.features_panel.set_current_layer("b32.conv1")
        drag(window, Tool.BRUSH, [(6.0, 8.0), (8.0, 9.0), (10.0, 10.0)])
        qtbot.waitUntil(lambda: window.bridge.executor.is_idle() and window.last_result is not None
                        and not window.last_result.draft
                        and len(window.stack.scene.edits) == 1, timeout=20_000)
        qtbot.wait(50)  # the last result's queued signal
        expected = Renderer(copy.deepcopy(tiny_generator()), "cpu").render(window.stack.scene)
        assert np.abs(window.last_result.image.astype(int) - expected.image.astype(int)).max() <= 1
        assert window.controls.render_label.text().startswith("exact")


def test_batches_render_on_the_gpu_what_they_render_on_the_cpu():
    cpu, gpu = _pair(_clamped_64px)
    scenes = [Scene(seed=seed, edits=(FeatureEdit("b32.conv1", (0, 1), MASK, 1.0),))
              for seed in range(3)]
    for on_cpu, on_gpu in zip(cpu.render_batch(scenes), gpu.render_batch(scenes)):
        _assert_same(on_cpu, on_gpu)
