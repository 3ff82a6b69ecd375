"""TensorFlow-era NVlabs pickles: the reader (plain data, nothing run), StyleGAN2 from TF with
NVlabs' conversion numerics, and the hostile corpus."""

from __future__ import annotations

import io

import numpy as np
import pytest

from ganinterface.models import load_generator, tf_pickle
from ganinterface.models.base import CheckpointError
from ganinterface.models.loading import FORMAT_TF_PICKLE, load_checkpoint
from tests.tf_fixtures import (
    TFStyleGAN2Spec,
    stylegan2_tf_networks,
    tf_network,
    tf_pickle_bytes,
    write_stylegan2_tf,
    write_tf_pickle,
)


def test_reader_keeps_the_network_state_as_plain_data_and_picks_gs():
    networks = stylegan2_tf_networks(TFStyleGAN2Spec(), seed=3)
    network = tf_pickle.read_tf_pickle(io.BytesIO(tf_pickle_bytes(networks)), "snapshot.pkl")
    gs_state = networks[2].state
    assert (network.name, network.build_func_name, network.version) == ("Gs", "G_main", 4)
    assert network.static_kwargs == gs_state["static_kwargs"]
    assert network.build_module_src == gs_state["build_module_src"]
    assert set(network.components) == {"mapping", "synthesis"}
    synthesis_state = gs_state["components"]["synthesis"].state
    for name, value in synthesis_state["variables"]:
        np.testing.assert_array_equal(network.components["synthesis"].variables[name], value)
    np.testing.assert_array_equal(network.variables["dlatent_avg"], dict(gs_state["variables"])["dlatent_avg"])


@pytest.mark.parametrize("version", [2, 3, 4, 5])
def test_every_tflib_state_version_is_read(version):
    network = tf_network("Gs", "G_whatever", {"resolution": 8},
                         {"Dense0/weight": np.ones((2, 3), np.float32)}, version=version)
    read = tf_pickle.read_tf_pickle(io.BytesIO(tf_pickle_bytes(network)), "net.pkl")
    assert read.version == version and read.variables["Dense0/weight"].shape == (2, 3)


def test_info_names_era_and_architecture(tmp_path):
    path = write_stylegan2_tf(tmp_path / "ffhq.pkl", TFStyleGAN2Spec(fmap_base=16384, fmap_max=512,
                                                                       resolution=8))
    loaded = load_checkpoint(path)
    assert loaded.format == FORMAT_TF_PICKLE
    assert loaded.description == "StyleGAN2 (config-f), TensorFlow pickle, 8 × 8 px, 4 ws"


def test_unknown_build_function_is_refused_naming_it(tmp_path):
    path = write_tf_pickle(tmp_path / "pggan.pkl", tf_network("G", "G_paper", {}, {}, version=2))
    with pytest.raises(CheckpointError, match=r"pggan\.pkl: .*built by 'G_paper', which is not a generator"):
        load_generator(path)
