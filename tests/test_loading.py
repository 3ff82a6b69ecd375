"""load_generator: formats recognised by content, every broken file refused with one line."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np
import pytest
import torch

from ganinterface import bundled
from ganinterface.models.base import CheckpointError
from ganinterface.models.loading import load_checkpoint, load_generator
from ganinterface.models.native import save_native
from nvlabs_fixtures import TINY_STYLEGAN2_KWARGS, same_weights, tiny_trained_stylegan2, write_nvlabs_snapshot
from test_rosinality import rosinality_state


@pytest.fixture
def nvlabs_pkl(tmp_path):
    return write_nvlabs_snapshot(tmp_path / "snapshot.pkl")


@pytest.fixture
def native_file(tmp_path):
    path = tmp_path / "model.safetensors"
    save_native(tiny_trained_stylegan2(seed=7), path)
    return path


@pytest.fixture
def rosinality_file(tmp_path):
    path = tmp_path / "rosinality.pt"
    torch.save({"g_ema": rosinality_state(), "latent_avg": torch.zeros(8)}, path)
    return path


def _refusal(path) -> str:
    with pytest.raises(CheckpointError) as caught:
        load_generator(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


# ---- formats by content ---------------------------------------------------------------------------

def test_each_format_is_recognised_by_content_not_extension(tmp_path, nvlabs_pkl, native_file, rosinality_file):
    disguised = {"nvlabs-pickle": nvlabs_pkl.rename(tmp_path / "actually-a-pickle.safetensors"),
                 "native": native_file.rename(tmp_path / "actually-native.pkl"),
                 "rosinality": rosinality_file.rename(tmp_path / "actually-rosinality.bin")}
    for expected_format, path in disguised.items():
        assert load_checkpoint(path).format == expected_format


def test_native_round_trip_keeps_weights(native_file):
    loaded = load_checkpoint(native_file)
    assert loaded.format == "native"
    assert same_weights(loaded.generator, tiny_trained_stylegan2(seed=7))


def test_loaded_generators_are_in_eval_mode_on_the_requested_device(nvlabs_pkl):
    generator = load_generator(nvlabs_pkl, device="cpu")
    assert not generator.training
    assert all(p.device.type == "cpu" for p in generator.parameters())


def test_torch_saved_nvlabs_state_dict_with_init_kwargs_loads(tmp_path):
    source = tiny_trained_stylegan2(seed=2)
    path = tmp_path / "g.pt"
    torch.save({"G_ema": {"init_kwargs": TINY_STYLEGAN2_KWARGS, "state_dict": source.state_dict()}}, path)
    loaded = load_checkpoint(path)
    assert loaded.format == "torch-state-dict" and same_weights(loaded.generator, source)


def test_torch_saved_state_dict_without_init_kwargs_says_what_is_missing(tmp_path):
    path = tmp_path / "sd.pt"
    torch.save(tiny_trained_stylegan2().state_dict(), path)
    assert "without init_kwargs" in _refusal(path)


def test_torch_file_with_unrelated_content(tmp_path):
    path = tmp_path / "optimizer.pt"
    torch.save({"step": 3, "lr": 0.1}, path)
    assert "not a known generator checkpoint" in _refusal(path)


# ---- built-in model --------------------------------------------------------------------------------

def test_none_loads_the_built_in_checkpoint(monkeypatch, native_file):
    monkeypatch.setattr(bundled, "builtin_checkpoint", lambda: native_file)
    assert same_weights(load_generator(None), tiny_trained_stylegan2(seed=7))


def test_missing_built_in_checkpoint_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(bundled, "checkpoints_dir", lambda: tmp_path / "checkpoints")
    with pytest.raises(CheckpointError, match="the built-in model is not there"):
        load_generator(None)


def test_built_in_checkpoint_is_package_data():
    folder = importlib.resources.files("ganinterface.checkpoints")
    assert bundled.builtin_checkpoint() == Path(str(folder)) / "portraits-128x64.safetensors"
    assert bundled.builtin_checkpoint().is_file()


# ---- broken input ----------------------------------------------------------------------------------

def test_missing_path(tmp_path):
    assert "no such file" in _refusal(tmp_path / "nope.pkl")


def test_directory(tmp_path):
    assert "is a directory" in _refusal(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.pkl").write_bytes(b"")
    assert "empty file" in _refusal(tmp_path / "empty.pkl")


@pytest.mark.parametrize("fixture_name, expected", [
    ("nvlabs_pkl", "truncated or corrupt pickle"),
    ("rosinality_file", "truncated or corrupt torch file"),
    ("native_file", "safetensors"),
])
def test_truncated_files(request, fixture_name, expected):
    path = request.getfixturevalue(fixture_name)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    path.with_suffix(".json").unlink(missing_ok=True)
    assert expected in _refusal(path)


def test_random_bytes(tmp_path):
    data = bytearray(np.random.RandomState(0).bytes(4096))
    data[0] = 0x17  # no magic number begins with it
    (tmp_path / "noise.pkl").write_bytes(bytes(data))
    assert "unknown format" in _refusal(tmp_path / "noise.pkl")


def test_random_bytes_behind_a_pickle_header(tmp_path):
    path = tmp_path / "noise.pkl"
    path.write_bytes(b"\x80\x04" + np.random.RandomState(1).bytes(4096))
    assert "pickle" in _refusal(path)


def test_unknown_format(tmp_path):
    path = tmp_path / "picture.pkl"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert "unknown format" in _refusal(path)
