"""A GPU that runs out of memory or fails during a render, injected on the CPU.

Out of memory: the renderer drops its caches and tries once more.  Out of memory again, or a failed
device: the window moves the model to the CPU, says so in the status bar, and keeps working.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganinterface.engine import commands as cmd
from ganinterface.engine.device import DEVICE_FAILED, OUT_OF_MEMORY, device_trouble
from ganinterface.engine.kinds.base import EditError
from ganinterface.engine.renderer import Renderer
from ganinterface.engine.scene import Scene
from ganinterface.ui.model_loading import LoadedModel, load_model, on_cpu, shape_of
from tiny_models import tiny_stylegan2
from ui_support import open_window, tiny_generator

CUDA_OOM = torch.cuda.OutOfMemoryError(
    "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity; "
    "5.10 GiB already allocated)")
MPS_OOM = RuntimeError("MPS backend out of memory (MPS allocated: 17.00 GB, other allocations: "
                       "1.20 GB, max allowed: 18.13 GB). Tried to allocate 256.00 MB on private "
                       "pool.")
CPU_OOM = RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't "
                       "allocate memory: you tried to allocate 68719476736 bytes.")
CUDA_ASSERT = RuntimeError("CUDA error: device-side assert triggered\nCUDA kernel errors might be "
                           "asynchronously reported at some other API call")
CUBLAS = RuntimeError("CUDA error: CUBLAS_STATUS_EXECUTION_FAILED when calling "
                      "`cublasSgemm( handle)`")
METAL = RuntimeError("Error: command buffer exited with error status.")


@pytest.mark.parametrize("error, trouble", [
    (CUDA_OOM, OUT_OF_MEMORY), (MPS_OOM, OUT_OF_MEMORY), (CPU_OOM, OUT_OF_MEMORY),
    (RuntimeError("CUDA error: out of memory"), OUT_OF_MEMORY),
    (CUDA_ASSERT, DEVICE_FAILED), (CUBLAS, DEVICE_FAILED), (METAL, DEVICE_FAILED),
    (RuntimeError("mat1 and mat2 shapes cannot be multiplied (1x8 and 6x8)"), None),
    (EditError("edit 1 (feature): channel 9 does not exist"), None),
    (ValueError("out of memory"), None),  # not torch's: a model's own complaint
])
def test_which_errors_are_the_devices(error, trouble):
    assert device_trouble(error) == trouble


def failing(generator, *errors):
    """Make ``generator.synthesize`` raise ``errors``, one per call, then work again."""
    real, pending = generator.synthesize, list(errors)
    calls = []

    def synthesize(*args, **kwargs):
        calls.append(1)
        if pending:
            raise pending.pop(0)
        return real(*args, **kwargs)

    generator.synthesize = synthesize
    return calls


def same_pixels(result, expected) -> bool:
    return result.error is None and np.array_equal(result.raw, expected.raw)


SCENE = Scene(seed=4, truncation_psi=0.7)


def renders_scene_as_on_the_cpu(renderer) -> bool:
    return same_pixels(renderer.render(SCENE), Renderer(tiny_stylegan2(), "cpu").render(SCENE))


def test_out_of_memory_once_frees_the_caches_and_renders():
    generator = tiny_stylegan2()
    renderer = Renderer(generator, "cpu")
    for seed in range(5):  # a cache full of other scenes
        renderer.render(Scene(seed=seed))
    alone = Renderer(tiny_stylegan2(), "cpu")
    expected = alone.render(SCENE)
    calls = failing(generator, CUDA_OOM)
    result = renderer.render(SCENE)
    assert same_pixels(result, expected) and result.trouble is None
    assert len(calls) == 2
    assert renderer.cache_bytes == alone.cache_bytes  # only this scene's layers: the rest was freed


@pytest.mark.parametrize("errors, trouble, calls", [
    ((MPS_OOM, MPS_OOM), OUT_OF_MEMORY, 2),  # tried once more, in vain
    ((CUDA_ASSERT,), DEVICE_FAILED, 1),  # not tried again: a failed device stays failed
])
def test_trouble_it_cannot_get_past_is_reported_and_the_renderer_goes_on(errors, trouble, calls):
    generator = tiny_stylegan2()
    renderer = Renderer(generator, "cpu")
    tried = failing(generator, *errors)
    result = renderer.render(SCENE)
    assert result.trouble == trouble and result.image is None
    assert result.error == f"{type(errors[0]).__name__}: {str(errors[0]).splitlines()[0]}"
    assert len(tried) == calls
    assert renders_scene_as_on_the_cpu(renderer)


def test_another_error_is_no_trouble_of_the_device():
    generator = tiny_stylegan2()
    tried = failing(generator, RuntimeError("a bug in the model"))
    result = Renderer(generator, "cpu").render(SCENE)
    assert result.error == "RuntimeError: a bug in the model" and result.trouble is None
    assert len(tried) == 1


# ---- to the CPU -------------------------------------------------------------------------------------

class OnGpu:
    """A renderer on a GPU, played by a Renderer on the CPU that says "cuda:0"."""

    device = torch.device("cuda", 0)

    def __init__(self, generator, moves: bool = True) -> None:
        self._inner = Renderer(generator, "cpu")
        self._moves = moves  # False: the failed device cannot hand the weights back

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def render(self, scene, taps=(), draft=False):
        return self._inner.render(scene, taps, draft)

    def on_cpu(self) -> Renderer:
        if not self._moves:
            raise RuntimeError("CUDA error: device-side assert triggered")
        return self._inner.on_cpu()


def test_on_cpu_moves_the_generator_into_a_new_renderer():
    generator = tiny_stylegan2()
    model = LoadedModel(OnGpu(generator), shape_of(generator, "tiny"), None)
    moved = on_cpu(model)
    assert isinstance(moved.renderer, Renderer) and moved.renderer.generator is generator
    assert moved.renderer.device == torch.device("cpu") and moved.shape == model.shape
    assert renders_scene_as_on_the_cpu(moved.renderer)


def test_on_cpu_loads_the_checkpoint_again_when_the_device_keeps_the_weights(tmp_path):
    from ganinterface.models.native import save_native

    checkpoint = tmp_path / "tiny.safetensors"
    save_native(tiny_stylegan2(), checkpoint)
    loaded = load_model(str(checkpoint))
    failed = OnGpu(loaded.renderer.generator, moves=False)
    model = LoadedModel(failed, loaded.shape, str(checkpoint))
    moved = on_cpu(model)
    assert moved.renderer.device == torch.device("cpu") and moved.checkpoint == str(checkpoint)
    assert moved.renderer.generator is not loaded.renderer.generator
    assert renders_scene_as_on_the_cpu(moved.renderer)


# ---- the window -------------------------------------------------------------------------------------

def gpu_loader(*errors, moves: bool = True):
    """The tiny model "on a GPU" whose first renders raise ``errors``."""
    def load(path):
        generator = tiny_stylegan2() if path is None else load_model(path).renderer.generator
        failing(generator, *errors)
        return LoadedModel(OnGpu(generator, moves), shape_of(generator, "tiny"), path)

    return load


def model_label(window) -> str:
    return window.controls.model_label.text()


@pytest.mark.parametrize("errors", [(CUDA_OOM, CUDA_OOM), (MPS_OOM, MPS_OOM)])
def test_out_of_memory_twice_moves_the_window_to_the_cpu(qtbot, tmp_path, errors):
    with open_window(qtbot, tmp_path, loader=gpu_loader(*errors)) as window:
        assert window.statusBar().currentMessage() == "GPU out of memory: rendering on the CPU"
        assert window.model.renderer.device == torch.device("cpu")
        assert model_label(window).endswith("· cpu")
        fresh = Renderer(tiny_stylegan2(), "cpu")
        assert np.array_equal(window.last_result.raw, fresh.render(window.stack.scene).raw)
        window.stack.push(cmd.set_fields("Seed", seed=9))  # and it keeps working
        assert np.array_equal(window.last_result.raw, fresh.render(Scene(seed=9)).raw)
        assert "Render failed" not in window.controls.render_label.text()


def test_out_of_memory_once_stays_on_the_gpu(qtbot, tmp_path):
    with open_window(qtbot, tmp_path, loader=gpu_loader(CUDA_OOM)) as window:
        assert isinstance(window.model.renderer, OnGpu)
        assert model_label(window).endswith("· cuda:0")
        assert "GPU" not in window.statusBar().currentMessage()
        expected = Renderer(tiny_stylegan2(), "cpu").render(window.stack.scene)
        assert np.array_equal(window.last_result.raw, expected.raw)


def test_a_failed_gpu_that_keeps_the_weights_reloads_the_checkpoint_on_the_cpu(qtbot, tmp_path):
    from ganinterface.models.native import save_native

    checkpoint = tmp_path / "tiny.safetensors"
    save_native(tiny_stylegan2(), checkpoint)
    loader = gpu_loader(CUDA_ASSERT, moves=False)
    with open_window(qtbot, tmp_path, loader=loader) as window:
        window.load_model_async(str(checkpoint))
        assert window.statusBar().currentMessage() == "GPU failed: rendering on the CPU"
        assert window.model.renderer.device == torch.device("cpu")
        assert window.model.checkpoint == str(checkpoint)
        expected = Renderer(tiny_stylegan2(), "cpu").render(window.stack.scene)
        assert np.array_equal(window.last_result.raw, expected.raw)


def test_out_of_memory_on_the_cpu_is_a_render_error_and_the_next_change_renders(qtbot, tmp_path):
    def loader(_path):
        generator = tiny_generator()
        renderer = Renderer(generator, "cpu")
        return LoadedModel(renderer, shape_of(generator, "tiny"), None)

    with open_window(qtbot, tmp_path, loader=loader) as window:
        renderer = window.model.renderer
        generator = renderer.generator
        real = generator.synthesize
        failing(generator, CPU_OOM, CPU_OOM)
        try:
            window.stack.push(cmd.set_fields("Seed", seed=5))
            assert window.controls.render_label.text().startswith("Render failed: RuntimeError")
            assert window.model.renderer is renderer  # nowhere to fall back to
            window.stack.push(cmd.set_fields("Seed", seed=6))
            assert "Render failed" not in window.controls.render_label.text()
            expected = Renderer(generator, "cpu").render(Scene(seed=6))
            assert np.array_equal(window.last_result.raw, expected.raw)
        finally:
            generator.synthesize = real  # the shared tiny generator serves other tests
