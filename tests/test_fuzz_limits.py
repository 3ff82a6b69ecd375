"""A checkpoint that asks for a network too large to build is refused before anything is allocated.

Each loader builds its generator from numbers in the file (native JSON config, NVlabs init_kwargs,
rosinality tensor counts); a 2^20-pixel resolution or a config worth 10^12 parameters must come back
as one CheckpointError naming the number, without a single module being constructed."""

from __future__ import annotations

import json

import pytest
import torch

from ganinterface.models import limits
from ganinterface.models.base import CheckpointError
from ganinterface.models.loading import load_generator
from ganinterface.models.native import save_native
from ganinterface.models.stylegan2 import StyleGAN2Generator
from ganinterface.models.stylegan3 import StyleGAN3Generator
from nvlabs_fixtures import TINY_STYLEGAN2_KWARGS, tiny_trained_stylegan2, write_nvlabs_snapshot
from test_rosinality import rosinality_state
from tiny_models import tiny_stylegan1

TINY_STYLEGAN3 = dict(z_dim=4, c_dim=0, w_dim=4, img_resolution=16, img_channels=3, channel_base=64,
                      channel_max=8, num_layers=4, num_critical=1, margin_size=2)


@pytest.fixture
def nothing_is_built(monkeypatch):
    """Fails the test if any torch module is constructed (the refusal must come first)."""
    def refuse(*args, **kwargs):
        raise AssertionError("a module was constructed before the configuration was refused")

    monkeypatch.setattr(torch.nn.Module, "__init__", refuse)


def _stored_values(generator) -> int:
    return sum(tensor.numel() for tensor in generator.state_dict().values())


@pytest.mark.parametrize("generator", [
    lambda: tiny_trained_stylegan2(),
    lambda: load_generator(None),
    lambda: StyleGAN2Generator(z_dim=64, c_dim=3, w_dim=64, img_resolution=64, img_channels=3,
                               channel_base=2048, architecture="resnet"),
    lambda: StyleGAN3Generator(**TINY_STYLEGAN3),
    lambda: StyleGAN3Generator(**dict(TINY_STYLEGAN3, use_radial_filters=True, conv_kernel=1)),
    lambda: tiny_stylegan1(c_dim=3),
], ids=["tiny-stylegan2", "built-in", "resnet-conditional", "stylegan3-t", "stylegan3-r", "stylegan1"])
def test_the_size_estimate_bounds_what_is_built(monkeypatch, generator):
    """The estimate is what the refusal rests on: close to what is built, never far above."""
    model = generator()
    estimates = []
    monkeypatch.setattr(limits, "check_values", lambda network, values: estimates.append(values))
    type(model)(**model.config())
    actual = _stored_values(model)
    assert len(estimates) == 1 and 0.9 * actual <= estimates[0] <= 3 * actual + 5000


def test_a_resolution_of_two_to_the_twenty_is_refused_before_building(nothing_is_built):
    with pytest.raises(ValueError, match=r"img_resolution must be between 1 and 4096, got 1048576"):
        StyleGAN2Generator(**dict(TINY_STYLEGAN2_KWARGS, img_resolution=2**20))
    with pytest.raises(ValueError, match=r"StyleGAN3Generator: img_resolution must be between"):
        StyleGAN3Generator(**dict(TINY_STYLEGAN3, img_resolution=2**20))


def test_a_trillion_parameters_are_refused_before_building(nothing_is_built):
    huge = dict(TINY_STYLEGAN2_KWARGS, img_resolution=1024, channel_base=2**29, channel_max=65536)
    with pytest.raises(ValueError, match=r"about \d.*e\+1\d parameters and buffers, more than the 1e\+09"):
        StyleGAN2Generator(**huge)
    with pytest.raises(ValueError, match=r"StyleGAN3Generator: .*parameters and buffers"):
        StyleGAN3Generator(**dict(TINY_STYLEGAN3, channel_base=2**29, channel_max=65536, w_dim=65536))


@pytest.mark.parametrize("bad, named", [
    (dict(z_dim=-3), "z_dim"), (dict(w_dim=0), "w_dim"), (dict(img_channels=2.5), "img_channels"),
    (dict(channel_max=-1), "channel_max"), (dict(kernel_size=10**6), "kernel_size"),
    (dict(mapping_kwargs=dict(num_layers=10**9)), "num_layers"), (dict(z_dim=True), "z_dim"),
    (dict(channels={4: 8, 8: -8, 16: 4}), "channels of block 8"), (dict(img_width=10**7), "img_width"),
])
def test_impossible_stylegan2_numbers_are_named(nothing_is_built, bad, named):
    with pytest.raises(ValueError, match=named):
        StyleGAN2Generator(**dict(TINY_STYLEGAN2_KWARGS, **bad))


@pytest.mark.parametrize("bad, named", [
    (dict(c_dim=-1), "c_dim"), (dict(num_layers=10**6, num_critical=1), "num_layers"),
    (dict(filter_size=10**5), "filter_size"), (dict(margin_size=10**7), "margin_size"),
])
def test_impossible_stylegan3_numbers_are_named(nothing_is_built, bad, named):
    with pytest.raises(ValueError, match=f"StyleGAN3Generator: {named}"):
        StyleGAN3Generator(**dict(TINY_STYLEGAN3, **bad))


def test_a_native_config_claiming_a_huge_resolution_is_refused(tmp_path):
    path = tmp_path / "g.safetensors"
    save_native(tiny_trained_stylegan2(), path)
    sidecar = path.with_suffix(".json")
    document = json.loads(sidecar.read_text())
    document["config"]["img_resolution"] = 2**20
    sidecar.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match=r"g\.json: invalid stylegan2 config .*img_resolution must be between"):
        load_generator(path)


def test_nvlabs_init_kwargs_claiming_a_trillion_parameters_are_refused(tmp_path):
    kwargs = dict(TINY_STYLEGAN2_KWARGS, channel_base=2**29, channel_max=65536)
    path = write_nvlabs_snapshot(tmp_path / "g.pkl", tiny_trained_stylegan2(), kwargs)
    with pytest.raises(CheckpointError, match=r"g\.pkl: cannot build a stylegan2 generator .*parameters"):
        load_generator(path)


def test_rosinality_with_twenty_blocks_of_tiny_tensors_is_refused(tmp_path):
    """Its size is counted from key names, so small tensors can claim a 2^22-pixel network."""
    state = rosinality_state()
    for k in range(4, 40):
        state[f"convs.{k}.conv.weight"] = torch.zeros(1, 4, 4, 3, 3)
    path = tmp_path / "g.pt"
    torch.save({"g_ema": state, "latent_avg": torch.zeros(8)}, path)
    with pytest.raises(CheckpointError, match=r"g\.pt: g_ema describes no generator .*img_resolution"):
        load_generator(path)
