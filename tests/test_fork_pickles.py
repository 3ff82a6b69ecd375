"""Pickles from forks of NVlabs' PyTorch code: extra constructor arguments (issue 18, point 4)."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

from ganinterface.models import load_generator
from ganinterface.models.base import CheckpointError
from ganinterface.models.loading import load_checkpoint
from ganinterface.models.native import load_native, save_native
from nvlabs_fixtures import TINY_STYLEGAN2_KWARGS, tiny_trained_stylegan2, write_nvlabs_snapshot


def render(generator, seed=0):
    z = torch.randn([2, generator.z_dim], generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return generator(z, truncation_psi=0.8)


def test_arguments_not_understood_are_listed_warned_once_and_ignored(tmp_path, caplog, monkeypatch):
    # test_architecture runs import-linter in this process, whose logging.config call disables
    # every logger that exists by then
    monkeypatch.setattr(logging.getLogger("ganinterface.models.nvlabs_pkl"), "disabled", False)
    trained = tiny_trained_stylegan2()
    kwargs = {**TINY_STYLEGAN2_KWARGS, "square": False, "frobnicate": {"a": 1},
              "mapping_kwargs": {**TINY_STYLEGAN2_KWARGS["mapping_kwargs"], "norm_first": True}}
    path = write_nvlabs_snapshot(tmp_path / "fork.pkl", trained, kwargs)
    with caplog.at_level(logging.WARNING):
        loaded = load_checkpoint(path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0] and warnings[0].startswith(f"{path}: ")
    for argument in ("square=False", "frobnicate={'a': 1}", "mapping_kwargs.norm_first=True"):
        assert argument in warnings[0]
        assert any(argument in note for note in loaded.notes)
    torch.testing.assert_close(render(loaded.generator), render(trained), rtol=0, atol=0)


@pytest.mark.parametrize("size, mode", [(32, "bilinear"), (8, "area")])
def test_draggan_resize_is_applied_as_its_code_does(tmp_path, size, mode):
    trained = tiny_trained_stylegan2()  # 16 px
    path = write_nvlabs_snapshot(tmp_path / "draggan.pkl", trained, {**TINY_STYLEGAN2_KWARGS, "resize": size})
    loaded = load_checkpoint(path)
    generator = loaded.generator
    assert (generator.img_height, generator.img_width) == (size, size)
    assert any(f"resize={size} applied" in note for note in loaded.notes)
    expected = F.interpolate(render(trained), [size, size], mode=mode)  # DragGAN's imresize
    torch.testing.assert_close(render(generator), expected, rtol=0, atol=1e-6)
    resumed = generator.synthesize(generator.mapping(torch.randn([1, 8])), start=0).image
    assert resumed.shape[-2:] == (size, size)


def test_resize_survives_conversion_to_the_native_format(tmp_path):
    path = write_nvlabs_snapshot(tmp_path / "draggan.pkl", tiny_trained_stylegan2(),
                                 {**TINY_STYLEGAN2_KWARGS, "resize": 24})
    generator = load_generator(path)
    save_native(generator, tmp_path / "native.safetensors")
    torch.testing.assert_close(render(load_native(tmp_path / "native.safetensors")), render(generator))


def test_fork_whose_weights_do_not_fit_is_refused_naming_the_first_tensor(tmp_path):
    wider = tiny_trained_stylegan2(channel_max=16)  # weights of another width than the kwargs say
    path = write_nvlabs_snapshot(tmp_path / "misfit.pkl", wider, {**TINY_STYLEGAN2_KWARGS, "resize": 32})
    with pytest.raises(CheckpointError, match=r"misfit\.pkl: synthesis\.b4\.const has shape "
                                              r"\(16, 4, 4\), the architecture needs \(8, 4, 4\)$"):
        load_generator(path)


@pytest.mark.slow
def test_draggan_resize_of_a_stylegan3_fork(tmp_path):
    from tiny_models import tiny_stylegan3

    trained = tiny_stylegan3()
    kwargs = {**trained.config(), "resize": 20}
    path = write_nvlabs_snapshot(tmp_path / "sg3.pkl", trained, kwargs)
    generator = load_generator(path)
    expected = F.interpolate(render(trained), [20, 20], mode="bilinear")
    torch.testing.assert_close(render(generator), expected, rtol=0, atol=1e-6)


def test_non_square_start_of_a_fork_is_read_from_the_constant(tmp_path):
    trained = tiny_trained_stylegan2(img_width=32)  # 16 px high, a 4 x 8 constant input
    kwargs = {**TINY_STYLEGAN2_KWARGS, "init_res": [4, 8]}  # the fork's own name for it
    loaded = load_checkpoint(write_nvlabs_snapshot(tmp_path / "wide.pkl", trained, kwargs))
    assert (loaded.generator.img_height, loaded.generator.img_width) == (16, 32)
    assert any("4 x 8 constant input" in note and "32 × 16 px" in note for note in loaded.notes)
    assert any("init_res=[4, 8]" in note for note in loaded.notes)
    torch.testing.assert_close(render(loaded.generator), render(trained), rtol=0, atol=0)
