"""Hostile TensorFlow-format pickles: refused in one line naming the file, nothing from them run,
nothing giant allocated (issue 18)."""

from __future__ import annotations

import dataclasses
import os
import tracemalloc

import numpy as np
import pytest

from ganinterface.models import load_generator
from ganinterface.models.base import CheckpointError
from tf_fixtures import (
    TFStyleGAN2Spec,
    stylegan2_generator,
    stylegan2_tf_networks,
    tf_network,
    write_tf_pickle,
)

SPEC = TFStyleGAN2Spec(resolution=8)
MAX_TRACED_BYTES = 64 << 20  # far below what any of the sizes claimed below would take


class RunsCommand:
    """Pickles as a call of os.system."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class AbsurdArray:
    """Pickles as numpy does, but its state claims a shape far larger than its data."""

    def __init__(self, shape):
        self.shape = shape

    def __reduce__(self):
        return (np.ndarray.__reduce__(np.zeros(1, np.float32))[0], (np.ndarray, (0,), b"b"),
                (1, self.shape, np.dtype("f4"), False, b"\0" * 4))


def with_state(network, **changes):
    network.state = {**network.state, **changes}
    return network


def with_variable(network, component, name, value):
    target = network.state["components"][component] if component else network
    with_state(target, variables=[*target.state["variables"], (name, value)])
    return network


def refusal(path) -> str:
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError) as caught:
            load_generator(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert peak < MAX_TRACED_BYTES
    return message


def test_reduce_payload_in_static_kwargs_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "ran"
    gs = stylegan2_generator(SPEC, seed=0)
    with_state(gs, static_kwargs={**gs.state["static_kwargs"], "x": RunsCommand(f"touch {marker}")})
    path = write_tf_pickle(tmp_path / "payload.pkl", gs)
    assert "refused for safety" in refusal(path) and "system" in refusal(path)
    assert not marker.exists()


def _source_that_creates(marker) -> str:
    return f"open({str(marker)!r}, 'w').write('ran')\ndef G_main(*args, **kwargs):\n    pass\n"


def test_build_module_src_is_never_run(tmp_path):
    """A valid generator whose embedded module source would create a file: it loads, inertly."""
    marker = tmp_path / "ran"
    networks = stylegan2_tf_networks(SPEC)
    for network in networks:
        with_state(network, build_module_src=_source_that_creates(marker))
    generator = load_generator(write_tf_pickle(tmp_path / "source.pkl", networks))
    assert generator.img_height == 8
    assert not marker.exists()


def test_build_module_src_of_an_unknown_network_is_refused_unrun(tmp_path):
    marker = tmp_path / "ran"
    network = tf_network("Gs", "G_evil", {}, {}, build_module_src=_source_that_creates(marker))
    path = write_tf_pickle(tmp_path / "unknown.pkl", network)
    assert "'G_evil'" in refusal(path)
    assert not marker.exists()


def test_array_claiming_an_absurd_shape_is_refused(tmp_path):
    gs = with_variable(stylegan2_generator(SPEC, seed=0), None, "huge", AbsurdArray((10**6, 10**6)))
    assert "buffer size does not match" in refusal(write_tf_pickle(tmp_path / "absurd.pkl", gs))


def with_replaced(network, component, name, value):
    target = network.state["components"][component] if component else network
    variables = {k: v for k, v in target.state["variables"] if k != name}
    with_state(target, variables=[*variables.items(), (name, value)])
    return network


@pytest.mark.parametrize("name, value, problem", [
    ("dlatent_avg", np.zeros(10**6, np.float32), "dlatent_size=10 does not match TensorFlow variable "
                                                 "dlatent_avg (w_dim 1000000)"),
    ("synthesis/8x8/Conv1/mod_weight", np.zeros((10, 3), np.float32),
     "variable synthesis/8x8/Conv1/mod_weight has shape (10, 3), the architecture needs (10, 16)"),
    ("synthesis/4x4/Conv/weight", np.zeros((3, 3, 1, 70_000), np.float32), "must be between 1 and 65536"),
    ("dlatent_avg", np.zeros((2, 2), np.int32), "not floating-point"),
], ids=["absurd w", "misshapen", "absurd channels", "integers"])
def test_variables_that_do_not_fit_are_refused_naming_one(tmp_path, name, value, problem):
    component, _, leaf = name.partition("/") if "/" in name else (None, "", name)
    gs = with_replaced(stylegan2_generator(SPEC, seed=0), component, leaf, value)
    assert problem in refusal(write_tf_pickle(tmp_path / "misfit.pkl", gs))


@pytest.mark.parametrize("name, value, problem", [
    ("synthesis/4x4/Const/const", np.zeros((1, 16, 4, 4), np.float32), "'4x4/Const/const' twice"),
    ("synthesis/8x8/Conv1/extra", np.zeros((3,), np.float32), "8x8/Conv1/extra is not part"),
], ids=["duplicate", "stray"])
def test_extra_variables_are_refused_naming_one(tmp_path, name, value, problem):
    component, _, leaf = name.partition("/")
    gs = with_variable(stylegan2_generator(SPEC, seed=0), component, leaf, value)
    assert problem in refusal(write_tf_pickle(tmp_path / "extra.pkl", gs))


@pytest.mark.parametrize("resolution, problem", [
    (2**20, "resolution must be between 1 and 4096, got 1048576"),
    (4096, "synthesis/16x16/Conv1/weight is missing"),
    (12, "resolution must be a power of two"),
])
def test_claimed_resolution_is_checked_before_anything_is_built(tmp_path, resolution, problem):
    spec = dataclasses.replace(SPEC, extra_kwargs=(("resolution", resolution),))
    assert problem in refusal(write_tf_pickle(tmp_path / "huge.pkl", stylegan2_generator(spec, seed=0)))


def test_network_containing_itself_is_refused(tmp_path):
    gs = stylegan2_generator(SPEC, seed=0)
    gs.state["components"]["mapping"] = gs
    assert "nested implausibly deep" in refusal(write_tf_pickle(tmp_path / "cycle.pkl", gs))


@pytest.mark.parametrize("version", [1, 6, "4", True, None])
def test_unknown_state_versions_are_refused(tmp_path, version):
    gs = with_state(stylegan2_generator(SPEC, seed=0), version=version)
    assert "state version" in refusal(write_tf_pickle(tmp_path / "version.pkl", gs))


@pytest.mark.parametrize("kwarg, value, variable", [
    ("label_size", 5, "mapping/LabelEmbed/weight"), ("latent_size", 512, "mapping/Dense0/weight"),
    ("dlatent_size", 512, "dlatent_avg")])
def test_stated_sizes_must_match_the_variables(tmp_path, kwarg, value, variable):
    spec = dataclasses.replace(SPEC, extra_kwargs=((kwarg, value),))
    message = refusal(write_tf_pickle(tmp_path / "sizes.pkl", stylegan2_generator(spec, seed=0)))
    assert f"static kwarg {kwarg}={value} does not match TensorFlow variable {variable}" in message
