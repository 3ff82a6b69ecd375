"""The fast mode: drafts in a reduced precision that stay the picture, cached apart from exact renders."""

import numpy as np
import pytest
import torch

from ganinterface.engine.device import fast_dtype
from ganinterface.engine.kinds import FeatureEdit
from ganinterface.engine.renderer import Renderer
from ganinterface.engine.scene import Mask, Rect, Scene
from ganinterface.models.stylegan2 import StyleGAN2Generator
from tiny_models import tiny_stylegan2, tiny_stylegan3


def _small_paper_like():
    """32 px, 4 blocks, conv_clamp as NVlabs trains with; ToRGB scaled so images span about
    [-1, 1] like a trained model's (differences scale with the image)."""
    torch.manual_seed(5)
    g = StyleGAN2Generator(z_dim=32, c_dim=0, w_dim=32, img_resolution=32, img_channels=3,
                           mapping_kwargs={"num_layers": 2}, channel_base=512, channel_max=32,
                           conv_clamp=256).eval()
    with torch.no_grad():
        g.mapping_network.w_avg.normal_()
        image = g.synthesize(g.mapping(torch.randn(1, 32))).image
        for name, parameter in g.named_parameters():
            if name.endswith((".torgb.weight", ".torgb.bias")):
                parameter.div_(float(image.abs().max()))
    return g


@pytest.mark.parametrize("dtype", [torch.bfloat16,
                                   pytest.param(torch.float16, marks=pytest.mark.slow)])
def test_fast_mode_stays_within_2e_2_of_the_exact_picture(dtype):
    g = _small_paper_like()
    worst = 0.0
    with torch.no_grad():
        for seed in range(4):
            ws = g.mapping(torch.randn(1, 32, generator=torch.Generator().manual_seed(seed)))
            exact = g.synthesize(ws).image
            fast = g.synthesize(ws, compute_dtype=dtype, keep_states=[4])
            assert fast.image.dtype == torch.float32
            assert fast.states[4]["x"].dtype == dtype and fast.states[4]["img"].dtype == torch.float32
            worst = max(worst, float((fast.image - exact).abs().max() / exact.abs().max()))
    assert 0 < worst <= 2e-2


def _leading_sixteenth(g) -> set[int]:
    """The blocks (by height) that together do at most 1/16 of the 3x3 convolutions'
    multiply-adds, first ones first, counted from the layer list."""
    work, channels_before = {}, None
    for layer in g.layers:
        if layer.kind != "conv":
            continue
        height = int(layer.name[1:].split(".")[0])
        area = layer.height * layer.width
        if layer.name.endswith("conv0"):  # a transposed convolution over the input's pixels
            work[height] = work.get(height, 0) + channels_before * layer.channels * area // 4
        else:
            work[height] = work.get(height, 0) + layer.channels * layer.channels * area
        channels_before = layer.channels
    leading, running = set(), 0
    for height in sorted(work):
        running += work[height]
        if running * 16 > sum(work.values()):
            return leading
        leading.add(height)
    return leading


@pytest.mark.parametrize("channel_max", [32, 128])
def test_a_reduced_precision_keeps_the_first_sixteenth_of_the_work_in_float32(channel_max):
    torch.manual_seed(7)
    g = StyleGAN2Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=64, img_channels=3,
                           mapping_kwargs={"num_layers": 1}, channel_base=2048,
                           channel_max=channel_max).eval()
    leading = _leading_sixteenth(g)
    convs = [layer.name for layer in g.layers if layer.kind == "conv"]
    assert leading and any(int(name[1:].split(".")[0]) not in leading for name in convs)
    with torch.no_grad():
        ws = g.mapping(torch.randn(1, 16))
        exact = g.synthesize(ws, taps=convs).taps
        draft = g.synthesize(ws, taps=convs, compute_dtype=torch.bfloat16).taps
    for name in convs:
        if int(name[1:].split(".")[0]) in leading:
            assert torch.equal(draft[name], exact[name]), name
        else:
            assert draft[name].dtype == torch.bfloat16, name


def test_drafts_and_exact_renders_are_cached_apart():
    g = tiny_stylegan2()
    renderer = Renderer(g, "cpu", fast=True)
    scene = Scene(seed=4)
    draft = renderer.render(scene, draft=True)
    exact = renderer.render(scene)
    assert draft.draft and not exact.draft
    assert exact.first_layer == 0  # nothing of the draft was reused
    np.testing.assert_array_equal(exact.raw, Renderer(g, "cpu", fast=False).render(scene).raw)
    assert not np.array_equal(draft.raw, exact.raw)
    assert np.abs(draft.raw - exact.raw).max() <= 2e-2 * np.abs(exact.raw).max()
    assert renderer.render(scene, draft=True).first_layer == len(g.layers)  # the draft, cached


@pytest.mark.parametrize("architecture", ["skip", "resnet"])
def test_a_draft_goes_on_from_the_exact_render_before_the_change(architecture):
    g = tiny_stylegan2(architecture=architecture)
    edited = Scene(seed=4, edits=(FeatureEdit("b8.conv1", (0, 1), Mask((Rect(0.2, 0.2, 0.7, 0.7),)), 2.0),))
    exact = Renderer(g, "cpu", fast=False).render(edited, taps=["b8.conv1"])
    from_scratch = Renderer(g, "cpu", fast=True).render(edited, draft=True)
    renderer = Renderer(g, "cpu", fast=True)
    renderer.render(Scene(seed=4))  # the exact render before a drag
    draft = renderer.render(edited, taps=["b8.conv1"], draft=True)
    # the edit is applied to the exact output of its layer; only the layers after it are reduced
    assert draft.draft and draft.first_layer == g.layer_index("b8.conv1") + 1
    assert from_scratch.first_layer == 0
    np.testing.assert_array_equal(draft.features["b8.conv1"], exact.features["b8.conv1"])
    assert not np.array_equal(draft.raw, exact.raw)
    # its states are cached as what they are: the exact render is not taken from them
    assert not renderer.render(edited).draft
    np.testing.assert_array_equal(renderer.render(edited).raw, exact.raw)


def test_a_drafts_torgb_after_an_exact_state_is_exact():
    """An edit at the last conv, drafted after the exact render: only the ToRGB runs, in its
    input's precision, so the draft is the exact picture."""
    g = tiny_stylegan2()
    edited = Scene(seed=2, edits=(FeatureEdit("b16.conv1", (1,), Mask((Rect(0.1, 0.1, 0.5, 0.9),)), -1.5),))
    renderer = Renderer(g, "cpu", fast=True)
    renderer.render(Scene(seed=2))
    draft = renderer.render(edited, draft=True)
    assert draft.first_layer == g.layer_index("b16.torgb")
    np.testing.assert_array_equal(draft.raw, Renderer(g, "cpu", fast=False).render(edited).raw)


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _counting_threads(generator):
    """``generator`` whose synthesis notes the torch thread count it ran with."""
    seen, synthesize = [], generator.synthesize
    generator.synthesize = lambda *args, **kwargs: (seen.append(torch.get_num_threads()),
                                                    synthesize(*args, **kwargs))[1]
    return generator, seen


def test_a_small_models_draft_on_the_cpu_leaves_a_core_and_never_stands_in_for_the_exact(two_threads):
    generator, seen = _counting_threads(tiny_stylegan3())
    renderer = Renderer(generator, "cpu")
    assert renderer.fast_dtype is None
    scene = Scene(seed=1, truncation_psi=0.7)
    draft = renderer.render(scene, draft=True)
    assert draft.draft and seen == [1] and torch.get_num_threads() == 2
    exact = renderer.render(scene)
    assert not exact.draft and seen[-1] == 2  # recomputed on every thread, not taken from the draft
    np.testing.assert_array_equal(exact.raw, Renderer(tiny_stylegan3(), "cpu").render(scene).raw)


def test_without_a_fast_precision_or_a_core_to_spare_a_draft_is_the_exact_render(two_threads):
    torch.set_num_threads(1)
    renderer = Renderer(tiny_stylegan3(), "cpu")
    result = renderer.render(Scene(seed=1), draft=True)
    assert not result.draft
    np.testing.assert_array_equal(result.raw, renderer.render(Scene(seed=1)).raw)
    torch.set_num_threads(2)
    never = Renderer(tiny_stylegan2(), "cpu", fast=False)
    assert never.fast_dtype is None and not never.render(Scene(seed=1), draft=True).draft


def test_the_fast_precision_follows_the_device_and_the_model():
    both = (torch.bfloat16, torch.float16)
    assert fast_dtype(torch.device("mps"), both) == torch.float16  # the more accurate one
    assert fast_dtype(torch.device("cuda"), both) == torch.float16
    assert fast_dtype(torch.device("mps"), (torch.bfloat16,)) is None
    assert fast_dtype(torch.device("cpu"), ()) is None
    assert tiny_stylegan2().fast_dtypes == both
    no_clamp = StyleGAN2Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3,
                                  channel_base=64, channel_max=8, conv_clamp=None)
    assert no_clamp.fast_dtypes == (torch.bfloat16,)  # float16 could overflow unclamped


def test_a_precision_the_model_cannot_compute_in_is_refused():
    with torch.no_grad(), pytest.raises(ValueError, match="float32 only"):
        g = tiny_stylegan3()
        g.synthesize(torch.zeros(1, g.num_ws, g.w_dim), compute_dtype=torch.bfloat16)


def test_drafts_are_reduced_by_default_only_for_images_large_enough_to_gain(monkeypatch):
    from ganinterface.engine import renderer as renderer_module

    monkeypatch.setattr(renderer_module, "fast_dtype", lambda device, allowed: torch.bfloat16)
    small = tiny_stylegan2()  # 16 x 8 px
    assert Renderer(small, "cpu").fast_dtype is None
    assert Renderer(small, "cpu", fast=True).fast_dtype == torch.bfloat16
    monkeypatch.setattr(renderer_module, "DRAFT_MIN_PIXELS", 16 * 8)
    assert Renderer(small, "cpu").fast_dtype == torch.bfloat16
    assert Renderer(small, "cpu", fast=False).fast_dtype is None


@pytest.mark.parametrize("activation, conv_clamp, with_noise", [
    ("lrelu", 4.0, True), ("relu", None, True), ("lrelu", None, False), ("linear", 2.0, True)])
def test_a_reduced_layer_ends_as_noise_activation_and_clamp_in_place_would(activation, conv_clamp,
                                                                           with_noise):
    from ganinterface.models.stylegan2_layers import SynthesisLayer

    torch.manual_seed(3)
    layer = SynthesisLayer(8, 8, w_dim=4, size=(6, 5), activation=activation, conv_clamp=conv_clamp).eval()
    y = (torch.randn(2, 8, 6, 5) * 6).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    noise = torch.randn(2, 1, 6, 5) if with_noise else None
    gain, g = 1.5, layer.act_gain * 1.5
    want = y.clone()  # the float32 path's steps, in place, in the same order
    if noise is not None:
        want.add_((noise * g).to(torch.bfloat16))
    if activation == "lrelu":
        torch.nn.functional.leaky_relu_(want, 0.2)
    elif activation == "relu":
        want.relu_()
    if conv_clamp is not None:
        want.clamp_(-conv_clamp * gain, conv_clamp * gain)
    got = layer._finish_reduced(y, noise, g, gain)
    assert got.dtype == torch.bfloat16 and got.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(got, want)
