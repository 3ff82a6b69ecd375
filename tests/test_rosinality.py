"""rosinality/stylegan2-pytorch checkpoints, checked against a naive rosinality forward pass.

The reference below is written from rosinality's ``model.py`` semantics with different mechanics:
one sample at a time, transposed convolution as zero insertion + ordinary convolution, FIR filtering
as an explicit sum of shifted copies.  Real rosinality checkpoints (made with rosinality's own code)
were compared in /tmp during development; these fixtures keep rosinality's key names and layouts but
use tiny channel counts.
"""

from __future__ import annotations

import argparse
import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganinterface.models.base import CheckpointError
from ganinterface.models.loading import load_checkpoint, load_generator
from ganinterface.models.rosinality import infer_config, rosinality_standard_channels
from nvlabs_fixtures import writes_file_when_unpickled

SQRT2 = math.sqrt(2.0)
FIR = torch.outer(torch.tensor([1.0, 3.0, 3.0, 1.0]), torch.tensor([1.0, 3.0, 3.0, 1.0]))
FIR = FIR / FIR.sum()
TINY_CHANNELS = {4: 6, 8: 5, 16: 4}


def rosinality_state(channels=TINY_CHANNELS, style_dim=8, n_mlp=2, seed=0) -> dict[str, torch.Tensor]:
    """A g_ema state dict with rosinality's names, shapes and buffers, random 'trained' values."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=g) * scale

    state: dict[str, torch.Tensor] = {}
    for i in range(1, n_mlp + 1):
        state[f"style.{i}.weight"] = randn(style_dim, style_dim, scale=100.0)  # stored / lr_mul
        state[f"style.{i}.bias"] = randn(style_dim, scale=10.0)

    def styled(name, cin, cout, up):
        state[f"{name}.conv.weight"] = randn(1, cout, cin, 3, 3)
        state[f"{name}.conv.modulation.weight"] = randn(cin, style_dim)
        state[f"{name}.conv.modulation.bias"] = 1 + randn(cin, scale=0.2)
        if up:
            state[f"{name}.conv.blur.kernel"] = FIR * 4
        state[f"{name}.noise.weight"] = randn(1, scale=0.3)
        state[f"{name}.activate.bias"] = randn(cout, scale=0.2)

    def torgb(name, cin, up):
        state[f"{name}.conv.weight"] = randn(1, 3, cin, 1, 1)
        state[f"{name}.conv.modulation.weight"] = randn(cin, style_dim)
        state[f"{name}.conv.modulation.bias"] = 1 + randn(cin, scale=0.2)
        state[f"{name}.bias"] = randn(1, 3, 1, 1, scale=0.2)
        if up:
            state[f"{name}.upsample.kernel"] = FIR * 4

    resolutions = sorted(channels)
    state["input.input"] = randn(1, channels[4], 4, 4)
    styled("conv1", channels[4], channels[4], up=False)
    torgb("to_rgb1", channels[4], up=False)
    for k, res in enumerate(resolutions[1:]):
        styled(f"convs.{2 * k}", channels[res // 2], channels[res], up=True)
        styled(f"convs.{2 * k + 1}", channels[res], channels[res], up=False)
        torgb(f"to_rgbs.{k}", channels[res], up=True)
    noise_resolutions = [4] + [r for r in resolutions[1:] for _ in range(2)]
    for n, res in enumerate(noise_resolutions):
        state[f"noises.noise_{n}"] = randn(1, 1, res, res)
    return state


# ---- naive reference ------------------------------------------------------------------------------

def _zero_insert(x: torch.Tensor) -> torch.Tensor:
    c, h, w = x.shape
    out = x.new_zeros(c, 2 * h - 1, 2 * w - 1)
    out[:, ::2, ::2] = x
    return out


def _fir(x: torch.Tensor, pad0: int, pad1: int, gain: float) -> torch.Tensor:
    x = F.pad(x, (pad0, pad1, pad0, pad1))
    h, w = x.shape[1] - 3, x.shape[2] - 3
    out = x.new_zeros(x.shape[0], h, w)
    for dy in range(4):
        for dx in range(4):
            out += gain * FIR[dy, dx] * x[:, dy:dy + h, dx:dx + w]
    return out


def _upsample_skip(x: torch.Tensor) -> torch.Tensor:
    c, h, w = x.shape
    stuffed = x.new_zeros(c, 2 * h, 2 * w)
    stuffed[:, ::2, ::2] = x
    return _fir(stuffed, 2, 1, gain=4.0)


def _modulated_conv(x, weight, style, demodulate, up):
    cout, cin, k, _ = weight.shape
    w = weight / math.sqrt(cin * k * k) * style.view(1, cin, 1, 1)
    if demodulate:
        w = w / torch.sqrt((w ** 2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
    if up:  # transposed convolution, stride 2 = zero insertion + full padding + flipped kernel
        out = F.conv2d(F.pad(_zero_insert(x), (k - 1,) * 4)[None], w.flip(2, 3))[0]
        return _fir(out, 1, 1, gain=4.0)
    return F.conv2d(x[None], w, padding=k // 2)[0]


def _affine(state, name, w):
    weight = state[f"{name}.conv.modulation.weight"]
    return w @ weight.T / math.sqrt(weight.shape[1]) + state[f"{name}.conv.modulation.bias"]


def naive_rosinality(state, z: np.ndarray, psi: float, w_avg: torch.Tensor) -> torch.Tensor:
    x = torch.from_numpy(z).float()[0]
    x = x / torch.sqrt((x ** 2).mean() + 1e-8)
    i = 1
    while f"style.{i}.weight" in state:
        weight, bias = state[f"style.{i}.weight"], state[f"style.{i}.bias"]
        x = F.leaky_relu(x @ (weight * 0.01 / math.sqrt(weight.shape[1])).T + bias * 0.01, 0.2) * SQRT2
        i += 1
    w = w_avg + psi * (x - w_avg)

    def styled(x, name, noise, up=False):
        x = _modulated_conv(x, state[f"{name}.conv.weight"][0], _affine(state, name, w), True, up)
        x = x + state[f"{name}.noise.weight"][0] * noise[0, 0]
        return F.leaky_relu(x + state[f"{name}.activate.bias"].view(-1, 1, 1), 0.2) * SQRT2

    def torgb(x, name):
        rgb = _modulated_conv(x, state[f"{name}.conv.weight"][0], _affine(state, name, w), False, False)
        return rgb + state[f"{name}.bias"][0]

    x = styled(state["input.input"][0], "conv1", state["noises.noise_0"])
    image = torgb(x, "to_rgb1")
    k = 0
    while f"convs.{2 * k}.conv.weight" in state:
        x = styled(x, f"convs.{2 * k}", state[f"noises.noise_{2 * k + 1}"], up=True)
        x = styled(x, f"convs.{2 * k + 1}", state[f"noises.noise_{2 * k + 2}"])
        image = torgb(x, f"to_rgbs.{k}") + _upsample_skip(image)
        k += 1
    return image


def _save(path, checkpoint, legacy=False):
    torch.save(checkpoint, path, _use_new_zipfile_serialization=not legacy)
    return path


# ---- tests -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-torch-save"])
def test_images_match_a_naive_rosinality_forward(tmp_path, legacy):
    state = rosinality_state()
    latent_avg = torch.randn(8, generator=torch.Generator().manual_seed(9))
    path = _save(tmp_path / "550000.pt", {"g_ema": state, "latent_avg": latent_avg,
                                         "args": argparse.Namespace(size=16, r1=10.0)}, legacy)
    loaded = load_checkpoint(path)
    assert loaded.format == "rosinality"
    generator = loaded.generator
    assert (generator.img_height, generator.img_width, generator.z_dim, generator.num_ws) == (16, 16, 8, 6)
    for psi in (1.0, 0.7):
        for seed in range(4):
            z = np.random.RandomState(seed).randn(1, 8)
            with torch.no_grad():
                ours = generator(torch.from_numpy(z).float(), truncation_psi=psi, noise_mode="const")[0]
            expected = naive_rosinality(state, z, psi, latent_avg)
            assert torch.allclose(ours, expected, atol=1e-4, rtol=0), (psi, seed, (ours - expected).abs().max())


def test_config_is_read_off_the_shapes():
    config = infer_config(rosinality_state(style_dim=8, n_mlp=3), "x.pt")
    assert (config.size, config.style_dim, config.n_mlp, config.channels) == (16, 8, 3, TINY_CHANNELS)
    assert config.channel_multiplier is None


def test_standard_channel_multiplier_is_recognised():
    table = rosinality_standard_channels(256, 2)
    assert table == {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128}
    zero = torch.zeros(1)
    shapes = {"input.input": (1, 512, 4, 4), "style.1.weight": (64, 64), "conv1.conv.weight": (1, 512, 512, 3, 3),
              "to_rgb1.conv.weight": (1, 3, 512, 1, 1)}
    for k, res in enumerate(sorted(table)[1:]):
        shapes[f"convs.{2 * k}.conv.weight"] = (1, table[res], table[res // 2], 3, 3)
        shapes[f"convs.{2 * k + 1}.conv.weight"] = (1, table[res], table[res], 3, 3)
    state = {key: zero.expand(*shape) for key, shape in shapes.items()}  # shapes only, no memory
    config = infer_config(state, "ffhq-256.pt")
    assert (config.size, config.channel_multiplier, config.n_mlp, config.style_dim) == (256, 2, 1, 64)


def test_without_latent_avg_w_avg_is_the_mean_mapped_latent(tmp_path):
    state = rosinality_state(seed=3)
    loaded = load_checkpoint(_save(tmp_path / "no_avg.pt", {"g_ema": state, "d": {}}))
    assert any("no latent_avg" in note for note in loaded.notes)
    z = torch.randn(10_000, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mapped = loaded.generator.mapping(z)[:, 0]
    # independent check of the mapping on a few rows, then of the average itself
    for row in (0, 1, 9999):
        x = z[row] / torch.sqrt((z[row] ** 2).mean() + 1e-8)
        for i in (1, 2):
            weight, bias = state[f"style.{i}.weight"], state[f"style.{i}.bias"]
            x = F.leaky_relu(x @ (weight * 0.01 / math.sqrt(8)).T + bias * 0.01, 0.2) * SQRT2
        assert torch.allclose(mapped[row], x, atol=1e-5)
    assert torch.allclose(loaded.generator.w_avg, mapped.mean(0), atol=1e-5)


def test_missing_tensor_is_named(tmp_path):
    state = rosinality_state()
    del state["convs.1.conv.modulation.bias"]
    with pytest.raises(CheckpointError, match=r"g_ema has no convs\.1\.conv\.modulation\.bias"):
        load_generator(_save(tmp_path / "broken.pt", {"g_ema": state}))


def test_wrong_latent_avg_size_is_reported(tmp_path):
    path = _save(tmp_path / "avg.pt", {"g_ema": rosinality_state(), "latent_avg": torch.zeros(5)})
    with pytest.raises(CheckpointError, match="latent_avg has 5 values, style_dim is 8"):
        load_generator(path)


def test_non_standard_blur_kernel_is_refused(tmp_path):
    state = rosinality_state()
    state["convs.0.conv.blur.kernel"] = torch.ones(4, 4)
    with pytest.raises(CheckpointError, match=r"convs\.0\.conv\.blur\.kernel is not the standard"):
        load_generator(_save(tmp_path / "blur.pt", {"g_ema": state}))


def test_swagan_checkpoint_is_refused(tmp_path):
    state = rosinality_state()
    state["to_rgbs.0.iwt.ll"] = torch.zeros(2, 2)
    with pytest.raises(CheckpointError, match="SWAGAN"):
        load_generator(_save(tmp_path / "swagan.pt", {"g_ema": state}))


def test_hostile_torch_file_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = _save(tmp_path / "evil.pt", {"g_ema": rosinality_state(), "args": writes_file_when_unpickled(marker)})
    with pytest.raises(CheckpointError) as caught:
        load_generator(path)
    assert "builtins.exec" in str(caught.value) and "\n" not in str(caught.value)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the payload is live: an unrestricted load runs it
    assert marker.exists()


def test_whole_pickled_module_in_a_torch_file_is_refused(tmp_path):
    buffer = io.BytesIO()
    torch.save(torch.nn.Linear(2, 2), buffer)
    path = tmp_path / "module.pt"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError, match=r"torch\.nn\.modules\.linear\.Linear"):
        load_generator(path)
