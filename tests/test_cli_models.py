"""``ganinterface info`` and ``ganinterface convert``."""

from __future__ import annotations

import hashlib
import json
import re
import pickle
import subprocess
import sys

import pytest
import torch

from ganinterface.cli import main
from ganinterface import bundled
from ganinterface.models.native import load_native
from nvlabs_fixtures import (
    TINY_STYLEGAN2_KWARGS,
    tiny_trained_stylegan2,
    write_nvlabs_snapshot,
    writes_file_when_unpickled,
)

# NVlabs' layout for TINY_STYLEGAN2_KWARGS (channels 4 -> 8, 8 -> 8, 16 -> 4): each block's conv0
# shares its w with the previous block's toRGB.
EXPECTED_LAYERS = [
    ("b4.conv1", 8, 4, [0]), ("b4.torgb", 3, 4, [1]),
    ("b8.conv0", 8, 8, [1]), ("b8.conv1", 8, 8, [2]), ("b8.torgb", 3, 8, [3]),
    ("b16.conv0", 4, 16, [3]), ("b16.conv1", 4, 16, [4]), ("b16.torgb", 3, 16, [5]),
]


@pytest.fixture
def snapshot(tmp_path):
    return write_nvlabs_snapshot(tmp_path / "network-snapshot-000200.pkl")


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_info_describes_an_nvlabs_snapshot(capsys, snapshot):
    code, out, err = _run(capsys, "info", snapshot)
    assert code == 0 and err == ""
    assert "nvlabs-pickle" in out and "stylegan2" in out
    assert "resolution:    16 × 16 px," in out
    assert "z_dim 8, w_dim 8, c_dim 0" in out and "num_ws 6" in out
    table = [re.split(r"\s{2,}", line.strip()) for line in out.splitlines()
             if line.strip().split(" ")[0].isdigit()]
    assert [(row[1], int(row[3]), row[4], row[5]) for row in table] == [
        (name, channels, f"{size} × {size} px", ",".join(map(str, ws)))
        for name, channels, size, ws in EXPECTED_LAYERS]


def test_info_json(capsys, snapshot):
    code, out, _ = _run(capsys, "info", snapshot, "--json")
    description = json.loads(out)
    assert code == 0
    assert description["format"] == "nvlabs-pickle" and description["resolution"] == [16, 16]
    assert [(layer["name"], layer["channels"], layer["height"], layer["w_indices"])
            for layer in description["layers"]] == EXPECTED_LAYERS
    assert description["parameters"] == sum(p.numel() for p in tiny_trained_stylegan2().parameters())


def test_info_on_a_broken_file_is_one_line_and_exit_1(capsys, tmp_path):
    path = tmp_path / "half.pkl"
    path.write_bytes(b"\x80\x04\x95")
    code, out, err = _run(capsys, "info", path)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and str(path) in err and "Traceback" not in err


def test_info_without_a_checkpoint_uses_the_built_in_model(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(bundled, "checkpoints_dir", lambda: tmp_path)
    code, _, err = _run(capsys, "info")
    assert code == 1 and "built-in model is not there" in err


def test_convert_writes_native_with_provenance(capsys, snapshot, tmp_path):
    target = tmp_path / "out" / "converted.safetensors"
    target.parent.mkdir()
    code, out, _ = _run(capsys, "convert", snapshot, target)
    assert code == 0 and "converted.safetensors" in out
    assert torch.equal(  # same weights, same pictures
        load_native(target)(torch.ones(1, 8), noise_mode="const"),
        tiny_trained_stylegan2()(torch.ones(1, 8), noise_mode="const"))
    document = json.loads(target.with_suffix(".json").read_text())
    provenance = document["provenance"]
    assert provenance["source_file"] == snapshot.name
    assert provenance["source_sha256"] == hashlib.sha256(snapshot.read_bytes()).hexdigest()
    assert provenance["source_format"] == "nvlabs-pickle"
    assert document["config"]["channel_max"] == TINY_STYLEGAN2_KWARGS["channel_max"]


def test_convert_refuses_to_overwrite_without_force(capsys, snapshot, tmp_path):
    target = tmp_path / "model.safetensors"
    assert _run(capsys, "convert", snapshot, target)[0] == 0
    code, _, err = _run(capsys, "convert", snapshot, target)
    assert code == 1 and "already exists" in err
    assert _run(capsys, "convert", snapshot, target, "--force")[0] == 0


def test_convert_quiet_prints_nothing(capsys, snapshot, tmp_path):
    assert _run(capsys, "convert", snapshot, tmp_path / "m.safetensors", "-q") == (0, "", "")
    assert (tmp_path / "m.safetensors").is_file()


def test_convert_needs_a_safetensors_target(capsys, snapshot, tmp_path):
    code, _, err = _run(capsys, "convert", snapshot, tmp_path / "model.pt")
    assert code == 1 and ".safetensors" in err
    assert not (tmp_path / "model.pt").exists()


def test_convert_of_a_hostile_pickle_writes_nothing(capsys, tmp_path):
    marker, source, target = tmp_path / "pwned", tmp_path / "evil.pkl", tmp_path / "evil.safetensors"
    source.write_bytes(pickle.dumps({"G_ema": writes_file_when_unpickled(marker)}))
    code, _, err = _run(capsys, "convert", source, target)
    assert code == 1 and "builtins.exec" in err and err.count("\n") == 1
    assert not marker.exists() and not target.exists() and not target.with_suffix(".json").exists()


@pytest.mark.slow  # a whole interpreter start; the messages are checked in-process above
def test_command_line_exit_code_and_message_without_traceback(tmp_path):
    missing = tmp_path / "missing.pkl"
    result = subprocess.run([sys.executable, "-m", "ganinterface", "info", str(missing)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == f"ganinterface info: error: {missing}: no such file"


def test_info_describes_a_rosinality_checkpoint(capsys, tmp_path):
    from test_rosinality import rosinality_state

    path = tmp_path / "550000.pt"
    torch.save({"g_ema": rosinality_state(), "latent_avg": torch.zeros(8)}, path)
    code, out, _ = _run(capsys, "info", path)
    assert code == 0
    assert "format:        rosinality" in out and "w_avg from latent_avg" in out
    assert "resolution:    16 × 16 px," in out and "z_dim 8, w_dim 8" in out
