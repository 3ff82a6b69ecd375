"""TensorFlow StyleGAN (v1) pickles: loaded through the TF reader, compared with the reference
forward pass over the file's own variables, converted to the native format, and refused in one
line when they do not fit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ganinterface.cli import main
from ganinterface.models import load_generator
from ganinterface.models.base import CheckpointError
from ganinterface.models.loading import FORMAT_TF_PICKLE, load_checkpoint
from ganinterface.models.native import load_native
from nvlabs_fixtures import file_writing_code, writes_file_when_unpickled
from tests.tf_fixtures import write_tf_pickle
from tests.tf_stylegan1_fixtures import (
    TFStyleGAN1Spec,
    gs_variables,
    reference_mapping,
    reference_synthesis,
    stylegan1_tf_networks,
    write_stylegan1_tf,
)


def _compare_with_reference(tmp_path, spec: TFStyleGAN1Spec, psi=0.7):
    networks = stylegan1_tf_networks(spec, seed=4)
    generator = load_generator(write_tf_pickle(tmp_path / "stylegan.pkl", networks))
    variables = gs_variables(networks[2])  # Gs, not G (which holds other weights)
    rng = np.random.default_rng(1)
    z = rng.standard_normal((2, spec.latent_size)).astype(np.float32)
    c = np.eye(spec.label_size, dtype=np.float32)[[0, spec.label_size - 1]] if spec.label_size else None
    with torch.no_grad():
        ws = generator.mapping(torch.from_numpy(z), None if c is None else torch.from_numpy(c),
                               truncation_psi=psi)
        image = generator.synthesize(ws).image
    expected_ws = reference_mapping(variables, spec, z, c, psi=psi)
    np.testing.assert_allclose(ws, expected_ws, atol=1e-5)
    expected = reference_synthesis(variables, spec, expected_ws)
    assert expected.abs().max() > 1  # the fixture's weights make every part of the network matter
    np.testing.assert_allclose(image, expected, atol=1e-4)
    return generator


def test_a_tf_pickle_renders_as_the_reference(tmp_path):
    generator = _compare_with_reference(tmp_path, TFStyleGAN1Spec())
    assert generator.architecture == "stylegan1" and generator.num_ws == 8
    assert (generator.img_height, generator.img_width) == (32, 32)


def test_a_conditional_tf_pickle_renders_as_the_reference(tmp_path):
    generator = _compare_with_reference(tmp_path, TFStyleGAN1Spec(label_size=3))
    assert generator.c_dim == 3 and generator.z_dim == 12


@pytest.mark.slow
@pytest.mark.parametrize("spec", [
    TFStyleGAN1Spec(fused_scale=True),
    TFStyleGAN1Spec(resolution=16, const_width=8),  # 16 high, 32 wide
    TFStyleGAN1Spec(resolution=64, const_width=2, fmap_base=256, fmap_max=8),  # 64 high, 32 wide
    TFStyleGAN1Spec(mapping_layers=1, latent_size=7, dlatent_size=9),
    TFStyleGAN1Spec(resolution=8, mapping_layers=8, fmap_base=24, fmap_max=24),
], ids=["fused", "16x32", "64x32", "one-mapping-layer", "8px-eight-mapping-layers"])
def test_unusual_tf_pickles_render_as_the_reference(tmp_path, spec):
    generator = _compare_with_reference(tmp_path, spec, psi=0.5)
    assert generator.img_width == spec.resolution * spec.const_width // 4


def test_truncation_cutoff_comes_from_the_static_kwargs_else_eight(tmp_path):
    default = load_generator(write_stylegan1_tf(tmp_path / "default.pkl"))
    three = load_generator(write_stylegan1_tf(tmp_path / "three.pkl", TFStyleGAN1Spec(truncation_cutoff=3)))
    assert default.config()["truncation_cutoff"] == 8 and three.config()["truncation_cutoff"] == 3
    z = torch.randn(1, 12)
    plain, truncated = three.mapping(z), three.mapping(z, truncation_psi=0.5)
    assert torch.equal(plain[:, 3:], truncated[:, 3:]) and not torch.equal(plain[:, :3], truncated[:, :3])


def test_a_cutoff_of_none_in_the_pickle_truncates_nothing_as_g_style_does(tmp_path):
    spec = TFStyleGAN1Spec(extra_kwargs=(("truncation_cutoff", None),))
    generator = load_generator(write_stylegan1_tf(tmp_path / "none.pkl", spec))
    z = torch.randn(1, 12)
    assert torch.equal(generator.mapping(z, truncation_psi=0.5), generator.mapping(z))
    assert not torch.equal(generator.mapping(z, truncation_psi=0.5, truncation_cutoff=2), generator.mapping(z))


def test_info_and_convert_to_the_native_format(tmp_path, capsys):
    path = write_stylegan1_tf(tmp_path / "wide.pkl", TFStyleGAN1Spec(resolution=16, const_width=2))
    loaded = load_checkpoint(path)
    assert loaded.format == FORMAT_TF_PICKLE
    assert loaded.description == "StyleGAN (v1), TensorFlow pickle, 8 × 16 px, 6 ws"
    assert main(["info", str(path)]) == 0
    assert "model:         StyleGAN (v1), TensorFlow pickle, 8 × 16 px, 6 ws" in capsys.readouterr().out
    assert main(["convert", str(path), str(tmp_path / "wide.safetensors")]) == 0
    native = load_native(tmp_path / "wide.safetensors")
    z = torch.randn(2, 12)
    with torch.no_grad():
        torch.testing.assert_close(native(z, truncation_psi=0.7), loaded.generator(z, truncation_psi=0.7),
                                   rtol=0, atol=0)


def test_unknown_static_kwargs_are_noted_and_the_network_loads(tmp_path):
    spec = TFStyleGAN1Spec(extra_kwargs=(("fork_specific", 3),))
    loaded = load_checkpoint(write_stylegan1_tf(tmp_path / "fork.pkl", spec))
    assert "static kwargs not understood (ignored): fork_specific" in loaded.notes


# ---- refusals ------------------------------------------------------------------------------------------
def _refusal(tmp_path, networks) -> str:
    path = write_tf_pickle(tmp_path / "bad.pkl", networks)
    with pytest.raises(CheckpointError) as caught:
        load_generator(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


def _variables_of(networks, component):
    return networks[2].state["components"][component].state["variables"]


def test_a_snapshot_taken_while_growing_is_refused(tmp_path):
    message = _refusal(tmp_path, stylegan1_tf_networks(TFStyleGAN1Spec(lod=1.5)))
    assert "TensorFlow variable lod is 1.5" in message and "still growing" in message


def test_a_mis_shaped_variable_is_refused_naming_it(tmp_path):
    networks = stylegan1_tf_networks(TFStyleGAN1Spec(), synthesis_extra={"8x8/Conv1/bias": np.zeros(5, np.float32)})
    message = _refusal(tmp_path, networks)
    assert "TensorFlow variable synthesis/8x8/Conv1/bias has shape (5,), the architecture needs (16,)" in message


def test_a_missing_variable_is_refused_naming_it(tmp_path):
    networks = stylegan1_tf_networks(TFStyleGAN1Spec())
    variables = _variables_of(networks, "synthesis")
    variables[:] = [(name, value) for name, value in variables if name != "16x16/Conv0_up/StyleMod/weight"]
    assert "TensorFlow variable synthesis/16x16/Conv0_up/StyleMod/weight is missing" in _refusal(tmp_path, networks)


def test_a_variable_the_architecture_lacks_is_refused_naming_it(tmp_path):
    extra = {"8x8/Skip/weight": np.ones((1, 1, 16, 16), np.float32)}
    message = _refusal(tmp_path, stylegan1_tf_networks(TFStyleGAN1Spec(), synthesis_extra=extra))
    assert "TensorFlow variable synthesis/8x8/Skip/weight is not part of the StyleGAN (v1)" in message


def test_a_mis_shaped_growing_torgb_is_refused(tmp_path):
    extra = {"ToRGB_lod1/weight": np.ones((1, 1, 4, 3), np.float32)}
    networks = stylegan1_tf_networks(TFStyleGAN1Spec(), synthesis_extra=extra)
    assert "TensorFlow variable synthesis/ToRGB_lod1/weight has shape (1, 1, 4, 3)" in _refusal(tmp_path, networks)


@pytest.mark.parametrize("kwarg, fragment", [
    (("label_size", 2),
     "static kwarg label_size=2 does not match TensorFlow variable mapping/LabelConcat/weight (c_dim 0)"),
    (("latent_size", 20),
     "static kwarg latent_size=20 does not match TensorFlow variable mapping/Dense0/weight (z_dim 12)"),
])
def test_static_kwargs_contradicting_the_variables_are_refused(tmp_path, kwarg, fragment):
    assert fragment in _refusal(tmp_path, stylegan1_tf_networks(TFStyleGAN1Spec(extra_kwargs=(kwarg,))))


def test_options_this_program_does_not_build_are_refused(tmp_path):
    spec = TFStyleGAN1Spec(extra_kwargs=(("const_input_layer", False),))
    message = _refusal(tmp_path, stylegan1_tf_networks(spec))
    assert "StyleGAN (v1) with const_input_layer=False is not supported" in message


def test_a_huge_claimed_resolution_is_refused_before_anything_is_built(tmp_path, monkeypatch):
    spec = dataclasses.replace(TFStyleGAN1Spec(), extra_kwargs=(("resolution", 2**20),))
    networks = stylegan1_tf_networks(spec)
    monkeypatch.setattr(torch.nn.Module, "__init__", lambda *a, **k: pytest.fail("a module was built"))
    assert "static kwarg resolution must be between 1 and 4096, got 1048576" in _refusal(tmp_path, networks)


def test_build_module_source_is_never_run(tmp_path):
    marker = tmp_path / "pwned"
    networks = stylegan1_tf_networks(TFStyleGAN1Spec())
    for network in (networks[2], *networks[2].state["components"].values()):
        network.state["build_module_src"] = file_writing_code(marker)
    generator = load_generator(write_tf_pickle(tmp_path / "source.pkl", networks))
    assert generator.architecture == "stylegan1" and not marker.exists()


def test_a_reduce_payload_in_the_static_kwargs_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    spec = TFStyleGAN1Spec(extra_kwargs=(("fmap_base", writes_file_when_unpickled(marker)),))
    message = _refusal(tmp_path, stylegan1_tf_networks(spec))
    assert "allow-list" in message and not marker.exists()
