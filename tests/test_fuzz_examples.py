"""The files the fuzzing of every reader found mishandled (issue 20), kept as plain examples: each
is refused with one line naming it, where it used to escape as another exception or to allocate
what its header claimed."""

from __future__ import annotations

import io
import struct
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ganinterface.export import userfiles
from ganinterface.export.userfiles import UserFileError
from ganinterface.models.base import CheckpointError
from ganinterface.models.loading import load_generator
from ganinterface.models.native import save_native
from nvlabs_fixtures import tiny_trained_stylegan2
from test_rosinality import rosinality_state

MODEL = SimpleNamespace(num_ws=6, w_dim=8)
LONG_NUMBER = "1" + "0" * 5000  # Python's int() refuses more than 4300 digits
DEEP = "[" * 100_000 + "]" * 100_000


def _refused(error_type, read, path, *fragments: str) -> str:
    with pytest.raises(error_type) as caught:
        read(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def _scene_text(seed: str) -> str:
    return '{"format": "ganinterface.scene", "version": 1, "seed": %s}' % seed


@pytest.mark.parametrize("seed, reason", [(LONG_NUMBER, "a number too long to read"),
                                          (DEEP, "nested too deeply")])
def test_scene_and_recipe_json_beyond_what_json_reads(tmp_path, seed, reason):
    scene = tmp_path / "s.json"
    scene.write_text(_scene_text(seed))
    _refused(UserFileError, userfiles.read_scene, scene, "not valid JSON", reason)
    recipe = tmp_path / "r.json"
    recipe.write_text('{"format": "ganinterface.recipe", "version": 1, "edits": %s}' % seed)
    _refused(UserFileError, userfiles.read_recipe, recipe, "not valid JSON", reason)


@pytest.mark.parametrize("edit", ['{"kind": ["feature"]}', '{"kind": "feature", "layer": "b8.conv1", '
                                  '"channels": [], "amount": 1, "mask": {"shapes": [{"kind": {}}]}}'],
                         ids=["edit", "mask shape"])
def test_a_kind_that_is_not_text(tmp_path, edit):
    path = tmp_path / "s.json"
    path.write_text('{"format": "ganinterface.scene", "version": 1, "edits": [%s]}' % edit)
    _refused(UserFileError, userfiles.read_scene, path, "kind must be one of")


@pytest.mark.parametrize("value, reason", [(LONG_NUMBER, "a number too long to read"),
                                           (DEEP, "nested too deeply")])
def test_a_session_beyond_what_json_reads(tmp_path, value, reason):
    path = tmp_path / "session.json"
    path.write_text('{"format": "ganinterface.session", "version": %s}' % value)
    _refused(UserFileError, userfiles.read_session, path, "not valid JSON", reason)


def test_a_clipboard_latent_nested_too_deeply(tmp_path):
    with pytest.raises(UserFileError, match="^clipboard: holds no latent .*nested too deeply"):
        userfiles.latent_from_text('{"ganinterface.latent": %s}' % DEEP, MODEL)


def test_a_direction_sidecar_nested_too_deeply(tmp_path):
    np.save(tmp_path / "d.npy", np.zeros(8, np.float32))
    (tmp_path / "d.json").write_text(DEEP)
    with pytest.raises(UserFileError, match=r"d\.json: not valid JSON \(nested too deeply\)$"):
        userfiles.read_direction(tmp_path / "d.npy", MODEL)


def test_a_native_description_with_a_number_too_long(tmp_path):
    path = tmp_path / "g.safetensors"
    save_native(tiny_trained_stylegan2(), path)
    path.with_suffix(".json").write_text('{"format": "ganinterface.generator", "version": %s}' % LONG_NUMBER)
    with pytest.raises(CheckpointError, match=r"g\.json: invalid JSON \(a number too long to read\)"):
        load_generator(path)


def _npy_with_header(header: bytes, data: bytes = b"\0" * 32) -> bytes:
    padded = header + b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(padded)) + padded + data


@pytest.mark.parametrize("header", [
    b"{'descr': '<f4', 'fortran_order': False, 'shape': (8,), \x00",  # numpy: SyntaxError
    b"{'descr': '<f4', 'fortran_order': False, 'shape': (8,",  # numpy: tokenize.TokenError
], ids=["null-byte", "unclosed"])
def test_a_damaged_npy_header(tmp_path, header):
    path = tmp_path / "d.npy"
    path.write_bytes(_npy_with_header(header))
    _refused(UserFileError, lambda p: userfiles.read_direction(p, MODEL), path, "not a readable .npy")
    _refused(UserFileError, lambda p: userfiles.read_latent(p, MODEL), path, "not a readable .npy")


def test_an_npy_header_claiming_petabytes_allocates_nothing(tmp_path, monkeypatch):
    path = tmp_path / "l.npy"
    path.write_bytes(_npy_with_header(b"{'descr': '<f8', 'fortran_order': False, 'shape': (100000000, 100000000), }"))

    def no_allocation(*args, **kwargs):
        raise AssertionError("np.load ran: it allocates what the header claims")

    monkeypatch.setattr(np, "load", no_allocation)
    _refused(UserFileError, lambda p: userfiles.read_latent(p, MODEL), path,
             "shape (100000000, 100000000)", "more than the 32 bytes that follow it")
    _refused(UserFileError, lambda p: userfiles.read_direction(p, MODEL), path, "more than the 32 bytes")


def test_an_empty_direction_pt_file(tmp_path):
    path = tmp_path / "d.pt"
    path.write_bytes(b"")
    _refused(UserFileError, lambda p: userfiles.read_direction(p, MODEL), path,
             "not a readable weights-only torch file")


@pytest.mark.parametrize("key, tensor", [("style.1.weight", torch.zeros(8)),
                                         ("conv1.noise.weight", torch.zeros(0))],
                         ids=["1-d style weight", "empty noise strength"])
def test_rosinality_tensors_of_the_wrong_rank(tmp_path, key, tensor):
    state = rosinality_state()
    state[key] = tensor
    path = tmp_path / "g.pt"
    stream = io.BytesIO()
    torch.save({"g_ema": state, "latent_avg": torch.zeros(8)}, stream)
    path.write_bytes(stream.getvalue())
    _refused(CheckpointError, load_generator, path, "g_ema tensors do not have the shapes of a rosinality")


def test_a_key_with_a_line_break_stays_on_one_line(tmp_path):
    path = tmp_path / "s.json"
    path.write_text('{"format": "ganinterface.scene", "version": 1, "edits": [{"kind": "style_mix", '
                    '"seed": 1, "first": 0, "bad\\nkey": 1}]}')
    message = _refused(UserFileError, userfiles.read_scene, path, "unknown field(s): bad\\nkey")
    assert "\n" not in message


def test_nvlabs_channels_that_are_not_a_table(tmp_path):
    from nvlabs_fixtures import TINY_STYLEGAN2_KWARGS, write_nvlabs_snapshot

    path = write_nvlabs_snapshot(tmp_path / "g.pkl", tiny_trained_stylegan2(),
                                 dict(TINY_STYLEGAN2_KWARGS, channels=7))
    _refused(CheckpointError, load_generator, path, "channels must map block heights to channel counts")


def test_a_one_byte_pickle_header(tmp_path):
    path = tmp_path / "g.pkl"
    path.write_bytes(b"\x80")
    _refused(CheckpointError, load_generator, path, "unknown format")


def test_a_torch_file_whose_tensor_size_torch_cannot_take(tmp_path):
    """torch's own rebuild raises TypeError for a size beyond int64."""
    stream = io.BytesIO()
    torch.save({"g_ema": {"style.1.weight": torch.zeros(8)}}, stream)
    data = stream.getvalue().replace(b"K\x08\x85", b"\x8a\x09" + b"\xff" * 8 + b"\x7f\x85", 1)
    path = tmp_path / "g.pt"
    path.write_bytes(data)
    _refused(CheckpointError, load_generator, path, "truncated or corrupt torch file")


@pytest.mark.parametrize("length", [b"\xff" * 8, b"\x00" * 5 + b"\x01\x00\x00"], ids=["2^64", "2^40"])
def test_a_pickle_frame_longer_than_the_file(tmp_path, length):
    path = tmp_path / "g.pkl"
    path.write_bytes(b"\x80\x04\x95" + length + b"}.")
    _refused(CheckpointError, load_generator, path, "corrupt pickle")


def test_nvlabs_mapping_kwargs_too_big_for_torch(tmp_path):
    from nvlabs_fixtures import TINY_STYLEGAN2_KWARGS, write_nvlabs_snapshot

    kwargs = dict(TINY_STYLEGAN2_KWARGS, mapping_kwargs=dict(num_layers=2, lr_multiplier=10**30))
    path = write_nvlabs_snapshot(tmp_path / "g.pkl", tiny_trained_stylegan2(), kwargs)
    _refused(CheckpointError, load_generator, path, "cannot build a stylegan2 generator")


def test_a_complex_latent_is_not_silently_made_real(tmp_path):
    path = tmp_path / "l.npy"
    np.save(path, np.ones(8, np.complex64))
    _refused(UserFileError, lambda p: userfiles.read_latent(p, MODEL), path, "not real-valued (complex64)")


def test_an_input_image_whose_header_claims_ten_billion_pixels(tmp_path):
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path = tmp_path / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b""))
    _refused(UserFileError, userfiles.read_image, path, "image too large to open safely")
