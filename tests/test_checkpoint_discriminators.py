"""Discriminators from users' checkpoints (NVlabs pickles' D, rosinality files' d): the same logits
and features as a forward written here from the files' own tensors, and projection's distance
using them (or naming one it cannot use, and going on without it)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganinterface.cli import main
from ganinterface.engine.picture_distance import distance_for
from ganinterface.models.loading import load_checkpoint_discriminator, load_generator
from nvlabs_fixtures import TINY_STYLEGAN2_KWARGS, tiny_trained_stylegan2, write_nvlabs_snapshot
from test_rosinality import rosinality_state

CHANNELS = {16: 4, 8: 8, 4: 8}  # channel_base 64, channel_max 8 at 16 px
FILTER = torch.tensor([1.0, 3.0, 3.0, 1.0])


def _random(generator: torch.Generator, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(shape, generator=generator) * scale


# ---- a tiny NVlabs D, its tensors named as NVlabs names them ----------------------------------------

def nvlabs_d_state(c_dim: int = 0, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    filter_2d = torch.outer(FILTER, FILTER) / 64
    state = {}
    for res, cin, cout in ((16, 4, 8), (8, 8, 8)):
        if res == 16:
            state |= {"b16.fromrgb.weight": _random(g, 4, 3, 1, 1), "b16.fromrgb.bias": _random(g, 4, scale=0.2),
                      "b16.fromrgb.resample_filter": filter_2d}
        state |= {f"b{res}.resample_filter": filter_2d,
                  f"b{res}.conv0.weight": _random(g, cin, cin, 3, 3), f"b{res}.conv0.bias": _random(g, cin, scale=0.2),
                  f"b{res}.conv0.resample_filter": filter_2d,
                  f"b{res}.conv1.weight": _random(g, cout, cin, 3, 3), f"b{res}.conv1.bias": _random(g, cout, scale=0.2),
                  f"b{res}.conv1.resample_filter": filter_2d,
                  f"b{res}.skip.weight": _random(g, cout, cin, 1, 1), f"b{res}.skip.resample_filter": filter_2d}
    out = 8 if c_dim else 1
    state |= {"b4.conv.weight": _random(g, 8, 9, 3, 3), "b4.conv.bias": _random(g, 8, scale=0.2),
              "b4.conv.resample_filter": filter_2d,
              "b4.fc.weight": _random(g, 8, 8 * 16), "b4.fc.bias": _random(g, 8, scale=0.2),
              "b4.out.weight": _random(g, out, 8), "b4.out.bias": _random(g, out, scale=0.2)}
    if c_dim:  # mapping: embed c to 8 features, then 2 layers at lr multiplier 0.01
        state |= {"mapping.embed.weight": _random(g, 8, c_dim), "mapping.embed.bias": _random(g, 8, scale=0.2),
                  "mapping.fc0.weight": _random(g, 8, 8, scale=100.0), "mapping.fc0.bias": _random(g, 8, scale=20.0),
                  "mapping.fc1.weight": _random(g, 8, 8, scale=100.0), "mapping.fc1.bias": _random(g, 8, scale=20.0)}
    return state


def nvlabs_d_kwargs(c_dim: int = 0, **overrides) -> dict:
    return dict(c_dim=c_dim, img_resolution=16, img_channels=3, architecture="resnet", channel_base=64,
                channel_max=8, num_fp16_res=0, conv_clamp=256, cmap_dim=None, block_kwargs={},
                mapping_kwargs=dict(num_layers=2), epilogue_kwargs=dict(mbstd_group_size=2), **overrides)


def _lrelu(x, gain=1.0, clamp=None):
    y = F.leaky_relu(x, 0.2) * math.sqrt(2) * gain
    return y if clamp is None else y.clamp(-clamp * gain, clamp * gain)


def _blur(x, pad):
    kernel = (torch.outer(FILTER, FILTER) / 64)[None, None].repeat(x.shape[1], 1, 1, 1)
    return F.conv2d(F.pad(x, [pad] * 4), kernel, groups=x.shape[1])


def _conv(x, weight, bias=None, **kwargs):
    fan_in = weight[0].numel()
    x = F.conv2d(x, weight / math.sqrt(fan_in), **kwargs)
    return x if bias is None else x + bias[None, :, None, None]


def _linear(x, weight, bias, lr=1.0):
    return x @ (weight * lr / math.sqrt(weight.shape[1])).T + bias * lr


def naive_nvlabs_d(s, images, c=None, clamp=256.0, group=2):
    """(block outputs, logits) by NVlabs' formulas, over the tensors by their names."""
    x, features = None, []
    for res in (16, 8):
        p = f"b{res}."
        if x is None:
            x = _lrelu(_conv(images, s[p + "fromrgb.weight"], s[p + "fromrgb.bias"]), clamp=clamp)
        skip = _conv(_blur(x, 1)[:, :, ::2, ::2], s[p + "skip.weight"]) * math.sqrt(0.5)
        y = _lrelu(_conv(x, s[p + "conv0.weight"], s[p + "conv0.bias"], padding=1), clamp=clamp)
        y = _lrelu(_conv(_blur(y, 2), s[p + "conv1.weight"], s[p + "conv1.bias"], stride=2),
                   gain=math.sqrt(0.5), clamp=clamp)
        x = skip + y
        features.append(x)
    n = len(x)
    grouped = x.reshape(group, n // group, *x.shape[1:])
    std = (grouped.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))
    x = torch.cat([x, std.repeat(group)[:, None, None, None].expand(n, 1, 4, 4)], dim=1)
    x = _lrelu(_conv(x, s["b4.conv.weight"], s["b4.conv.bias"], padding=1), clamp=clamp)
    x = _lrelu(_linear(x.flatten(1), s["b4.fc.weight"], s["b4.fc.bias"]))
    x = _linear(x, s["b4.out.weight"], s["b4.out.bias"])
    if c is not None:
        def unit(v):
            return v / (v.square().mean(dim=1, keepdim=True) + 1e-8).sqrt()

        cmap = unit(_linear(c, s["mapping.embed.weight"], s["mapping.embed.bias"]))
        for index in range(2):
            cmap = _lrelu(_linear(cmap, s[f"mapping.fc{index}.weight"], s[f"mapping.fc{index}.bias"], lr=0.01))
        x = (x * cmap).sum(dim=1, keepdim=True) / math.sqrt(cmap.shape[1])
    return features, x


def _images(n=4, size=16, seed=1):
    return torch.randn((n, 3, size, size), generator=torch.Generator().manual_seed(seed)).clamp(-1, 1)


def _snapshot(path, d_state, d_kwargs):
    return write_nvlabs_snapshot(path, tiny_trained_stylegan2(), TINY_STYLEGAN2_KWARGS,
                                 discriminator=(d_state, d_kwargs))


@pytest.mark.parametrize("c_dim", [0, pytest.param(3, marks=pytest.mark.slow)])
def test_an_nvlabs_d_agrees_with_a_forward_written_from_its_tensors(tmp_path, c_dim):
    state = nvlabs_d_state(c_dim)
    state["b16.conv0.bias"][0] = 400.0  # past conv_clamp: the clamp matters
    path = _snapshot(tmp_path / "snapshot.pkl", state, nvlabs_d_kwargs(c_dim))
    loaded = load_checkpoint_discriminator(path, 16, 16)
    assert loaded.description == "the discriminator in snapshot.pkl (NVlabs StyleGAN2 resnet D)"
    images = _images()
    c = F.one_hot(torch.tensor([0, 2, 1, 2]), 3).float() if c_dim else None
    expected_features, expected_logits = naive_nvlabs_d(state, images, c)
    with torch.no_grad():
        features = loaded.network.features(images)
        logits = loaded.network(images, c)
    assert [f.shape for f in features] == [(4, 8, 8, 8), (4, 8, 4, 4)]
    for ours, theirs in zip(features, expected_features):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(logits, expected_logits, rtol=1e-4, atol=1e-4)


# ---- a tiny rosinality d ------------------------------------------------------------------------

def rosinality_d_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """rosinality's Discriminator(16) names: convs.0 from RGB, convs.1-2 residual blocks, then
    final_conv and final_linear; Blur kernels are buffers."""
    g = torch.Generator().manual_seed(seed)
    kernel = torch.outer(FILTER, FILTER) / 64
    state = {"convs.0.0.weight": _random(g, 4, 3, 1, 1), "convs.0.1.bias": _random(g, 4, scale=0.2)}
    for index, (cin, cout) in enumerate(((4, 8), (8, 8)), start=1):
        block = f"convs.{index}"
        state |= {f"{block}.conv1.0.weight": _random(g, cin, cin, 3, 3), f"{block}.conv1.1.bias": _random(g, cin, scale=0.2),
                  f"{block}.conv2.0.kernel": kernel, f"{block}.conv2.1.weight": _random(g, cout, cin, 3, 3),
                  f"{block}.conv2.2.bias": _random(g, cout, scale=0.2),
                  f"{block}.skip.0.kernel": kernel, f"{block}.skip.1.weight": _random(g, cout, cin, 1, 1)}
    state |= {"final_conv.0.weight": _random(g, 8, 9, 3, 3), "final_conv.1.bias": _random(g, 8, scale=0.2),
              "final_linear.0.weight": _random(g, 8, 128), "final_linear.0.bias": _random(g, 8, scale=0.2),
              "final_linear.1.weight": _random(g, 1, 8), "final_linear.1.bias": _random(g, 1, scale=0.2)}
    return state


def naive_rosinality_d(s, images):
    """(residual block outputs, logits) as rosinality's Discriminator computes them."""
    def fused_lrelu(x, bias):
        return F.leaky_relu(x + bias.reshape(1, -1, *[1] * (x.ndim - 2)), 0.2) * math.sqrt(2)

    out = fused_lrelu(_conv(images, s["convs.0.0.weight"]), s["convs.0.1.bias"])
    features = []
    for index in (1, 2):
        block = f"convs.{index}."
        y = fused_lrelu(_conv(out, s[block + "conv1.0.weight"], padding=1), s[block + "conv1.1.bias"])
        y = fused_lrelu(_conv(_blur(y, 2), s[block + "conv2.1.weight"], stride=2), s[block + "conv2.2.bias"])
        skip = _conv(_blur(out, 1), s[block + "skip.1.weight"], stride=2)
        out = (y + skip) / math.sqrt(2)
        features.append(out)
    batch = len(out)
    group = min(batch, 4)
    std = out.view(group, -1, 1, 8, 4, 4)
    std = torch.sqrt(std.var(0, unbiased=False) + 1e-8).mean([2, 3, 4], keepdim=True).squeeze(2)
    out = torch.cat([out, std.repeat(group, 1, 4, 4)], 1)
    out = fused_lrelu(_conv(out, s["final_conv.0.weight"], padding=1), s["final_conv.1.bias"])
    out = fused_lrelu(out.view(batch, -1) @ (s["final_linear.0.weight"] / math.sqrt(128)).T, s["final_linear.0.bias"])
    return features, out @ (s["final_linear.1.weight"] / math.sqrt(8)).T + s["final_linear.1.bias"]


def _rosinality_file(path, d_state):
    torch.save({"g_ema": rosinality_state(), "d": d_state}, path)
    return path


def test_a_rosinality_d_agrees_with_its_own_forward(tmp_path):
    state = rosinality_d_state()
    loaded = load_checkpoint_discriminator(_rosinality_file(tmp_path / "550000.pt", state), 16, 16)
    assert loaded.description == "the discriminator in 550000.pt (rosinality)"
    images = _images()
    expected_features, expected_logits = naive_rosinality_d(state, images)
    with torch.no_grad():
        features, logits = loaded.network.features(images), loaded.network(images)
    for ours, theirs in zip(features, expected_features):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(logits, expected_logits, rtol=1e-4, atol=1e-4)


# ---- projection uses them, or names the one it cannot use ------------------------------------------

def _picture(path):
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 20, 3), np.uint8)).save(path)


def test_project_uses_the_checkpoints_d_and_says_so(tmp_path, capsys):
    path = _snapshot(tmp_path / "snapshot.pkl", nvlabs_d_state(), nvlabs_d_kwargs())
    _picture(tmp_path / "me.png")
    assert main(["project", str(tmp_path / "me.png"), str(path), "--steps", "1", "--discriminator",
                 "-o", str(tmp_path / "{name}.npz")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == "distance: pixels at 3 scales, edges weighted + the discriminator in snapshot.pkl (NVlabs StyleGAN2 resnet D)"
    rosinality = _rosinality_file(tmp_path / "r.pt", rosinality_d_state())
    distance = distance_for(rosinality, load_generator(rosinality), discriminator=True)
    assert distance.description.endswith("the discriminator in r.pt (rosinality)") and not distance.notes


@pytest.mark.slow
@pytest.mark.parametrize("kwargs, problem", [
    (dict(architecture="skip"), "its discriminator is a 'skip' one; this program builds only NVlabs' default, 'resnet'"),
    (dict(channel_max=16), "b8.conv1.weight has shape (8, 8, 3, 3), the architecture needs (16, 8, 3, 3)"),
])
def test_a_d_that_does_not_fit_is_named_in_one_line_and_the_projection_goes_on(tmp_path, capsys, kwargs, problem):
    path = _snapshot(tmp_path / "snapshot.pkl", nvlabs_d_state(), {**nvlabs_d_kwargs(), **kwargs})
    _picture(tmp_path / "me.png")
    assert main(["project", str(tmp_path / "me.png"), str(path), "--steps", "1", "-q",
                 "--discriminator", "-o", str(tmp_path / "{name}.npz")]) == 0
    assert capsys.readouterr().err == f"ganinterface project: without its discriminator: {path}: {problem}\n"
    assert (tmp_path / "me.npz").exists()


def test_a_d_for_another_image_size_is_named(tmp_path):
    path = _snapshot(tmp_path / "snapshot.pkl", nvlabs_d_state(), nvlabs_d_kwargs())
    distance = distance_for(path, tiny_trained_stylegan2(img_resolution=32), discriminator=True)
    assert distance.notes == [f"without its discriminator: {path}: its discriminator reads 16 × 16 px "
                              "images; the generator makes 32 × 32 px"]
    assert distance.description == "pixels at 3 scales, edges weighted"
