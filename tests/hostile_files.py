"""Malformed and hostile files for every reader, as hypothesis strategies (issue 20).

Each ``FuzzedReader`` names a reader the window and the command line use, how to call it on a file,
and a strategy that draws the files to try: mutations of valid files (bytes flipped, cut, inserted
or removed; a JSON value swapped for a wrong type, NaN, a huge or negative number, deep nesting; a
key removed or added; a tensor or a size changed in a checkpoint) and generated garbage. A strategy
draws ``{file name: bytes}``; the first name is the file the reader is given, the others lie beside
it (a direction's sidecar, a native checkpoint's description).
"""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import struct
import types
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hypothesis import reject
from hypothesis import strategies as st

from ganinterface.engine.directions import Direction
from ganinterface.engine.scene import Recipe, Scene
from ganinterface.export import userfiles
from ganinterface.export.images import SCENE_CHUNK_KEY, png_bytes
from ganinterface.models.loading import load_checkpoint
from ganinterface.models.native import save_native
from nvlabs_fixtures import TINY_STYLEGAN2_KWARGS, nvlabs_snapshot_bytes, tiny_trained_stylegan2
from test_kinds import ONE_OF_EACH
from test_rosinality import rosinality_state
from tf_fixtures import TFStyleGAN2Spec, stylegan2_generator, stylegan2_tf_networks, tf_pickle_bytes

TF_SPEC = TFStyleGAN2Spec(resolution=8, mapping_fmaps=8)
MODEL = types.SimpleNamespace(num_ws=6, w_dim=8)  # what latents and directions must fit
Files = dict[str, bytes]

# ---- generic mutations ---------------------------------------------------------------------------

PLACEHOLDER = "\x00raw-json-token\x00"
# JSON text that json.dumps cannot write but a hostile file can hold
RAW_TOKENS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" + "0" * 5000,
              "[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "0" + "}" * 50_000, '"\\ud800"']
HOSTILE_NUMBERS = [0, -1, -(2**31), 2**20, 2**31, 2**63, 10**12, 10**30, 1.5, -0.5, 1e308,
                   float("nan"), float("inf"), float("-inf")]
HOSTILE_VALUES = st.one_of(
    st.sampled_from(HOSTILE_NUMBERS), st.none(), st.booleans(), st.integers(), st.floats(),
    st.text(max_size=12), st.lists(st.integers(-3, 3), max_size=4),
    st.dictionaries(st.text(max_size=4), st.integers(-3, 3), max_size=2),
    st.sampled_from(RAW_TOKENS).map(lambda token: (PLACEHOLDER, token)))


@st.composite
def mutated_bytes(draw, data: bytes) -> bytes:
    """One to a few byte-level damages of ``data``."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "overwrite"]))
        if kind == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif kind == "overwrite":
            patch = draw(st.sampled_from([b"\xff" * 8, b"\x00" * 8, b"\x7f\xff\xff\xff", b"9" * 12]))
            data[at:at + len(patch)] = patch
    return bytes(data)


def garbage() -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=512), st.text(max_size=200).map(str.encode))


def _paths(value: Any, path: tuple = ()) -> list[tuple]:
    """Every node of a JSON document, as the keys and indices that lead to it."""
    found = [path]
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found += _paths(child, path + (key,))
    return found


def _dumps(document: Any) -> str:
    raw: list[str] = []

    def unwrap(value: Any) -> Any:
        if isinstance(value, tuple) and value and value[0] == PLACEHOLDER:
            raw.append(value[1])
            return PLACEHOLDER
        if isinstance(value, dict):
            return {k: unwrap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [unwrap(v) for v in value]
        return value

    text = json.dumps(unwrap(document), allow_nan=True)
    for token in raw:
        text = text.replace(json.dumps(PLACEHOLDER), token, 1)
    return text


@st.composite
def mutated_json(draw, document: Any, under: Callable[[tuple], bool] = lambda path: True) -> bytes:
    """``document`` with one to three nodes (those ``under`` picks) replaced, removed or grown."""
    document = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(document) if p and under(p)]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        action = draw(st.sampled_from(["replace", "replace", "remove", "add"]))
        if action == "replace":
            parent[key] = draw(HOSTILE_VALUES)
        elif action == "remove":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(HOSTILE_VALUES)
        else:
            parent.insert(key, draw(HOSTILE_VALUES))
    return _dumps(document).encode("utf-8", "surrogatepass")


# ---- valid files -----------------------------------------------------------------------------------

def valid_scene() -> Scene:
    return Scene(seed=7, w=np.linspace(-1, 1, 8), truncation_psi=0.7, edits=ONE_OF_EACH)


def _itxt_chunk(text: bytes) -> bytes:
    body = b"iTXt" + SCENE_CHUNK_KEY.encode() + b"\x00\x00\x00\x00\x00" + text
    return struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))


def png_carrying(text: bytes) -> bytes:
    """A PNG whose scene chunk holds ``text`` as it is (uncompressed), before IEND."""
    plain = png_bytes(np.zeros((4, 4, 3), np.uint8))
    return plain[:-12] + _itxt_chunk(text) + plain[-12:]


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _torch_bytes(payload: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def arrays() -> st.SearchStrategy[np.ndarray]:
    shapes = st.lists(st.sampled_from([0, 1, 2, 6, 8, 9]), max_size=3).map(tuple)
    dtypes = st.sampled_from([np.float32, np.float64, np.float16, np.int64, np.uint8, np.bool_,
                              np.complex64, "U3", "S2", "V4"])
    fills = st.sampled_from([0.0, 1.0, -3.0, 1e30, np.nan, np.inf])
    return st.builds(lambda shape, dtype, fill: _filled(shape, dtype, fill), shapes, dtypes, fills)


def _filled(shape: tuple, dtype: Any, fill: float) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        array = np.full(shape, fill).astype(dtype) if np.dtype(dtype).kind in "fciub" else np.zeros(shape, dtype)
    return array


@dataclasses.dataclass(frozen=True)
class Valid:
    """Valid sample files, made once per test session."""

    scene_json: dict
    recipe_json: dict
    direction_npy: bytes
    direction_sidecar: dict
    native_weights: bytes
    native_sidecar: dict
    nvlabs_pickle: bytes
    rosinality_pt: bytes
    tf_pickle: bytes


def make_valid(folder: Path) -> Valid:
    scene = valid_scene()
    userfiles.write_direction(folder / "d.npy", Direction(np.linspace(0, 1, 8).astype(np.float32), first=1,
                                                          last=4, name="d", provenance={"by": "test"}))
    save_native(tiny_trained_stylegan2(), folder / "g.safetensors", provenance={"by": "test"})
    return Valid(scene_json=json.loads(scene.to_json()),
                 recipe_json=json.loads(Recipe(edits=ONE_OF_EACH, name="r", model_hash="ab" * 32).to_json()),
                 direction_npy=(folder / "d.npy").read_bytes(),
                 direction_sidecar=json.loads((folder / "d.json").read_text()),
                 native_weights=(folder / "g.safetensors").read_bytes(),
                 native_sidecar=json.loads((folder / "g.json").read_text()),
                 nvlabs_pickle=nvlabs_snapshot_bytes(tiny_trained_stylegan2(), TINY_STYLEGAN2_KWARGS),
                 rosinality_pt=_torch_bytes({"g_ema": rosinality_state(), "latent_avg": torch.zeros(8)}),
                 tf_pickle=tf_pickle_bytes(stylegan2_tf_networks(TF_SPEC)))


# ---- checkpoints: field mutations ------------------------------------------------------------------

@st.composite
def nvlabs_fields(draw) -> bytes:
    """An NVlabs pickle whose init_kwargs, resolution or one tensor's shape is not what it should be."""
    kwargs = copy.deepcopy(TINY_STYLEGAN2_KWARGS)
    generator = tiny_trained_stylegan2()
    what = draw(st.sampled_from(["kwarg", "mapping", "tensor", "extra"]))
    if what == "kwarg":
        key = draw(st.sampled_from(sorted(kwargs) + ["channels", "kernel_size", "architecture", "img_width"]))
        kwargs[key] = draw(HOSTILE_VALUES.filter(lambda v: not isinstance(v, tuple)))
    elif what == "mapping":
        kwargs["mapping_kwargs"] = {draw(st.sampled_from(["num_layers", "layer_features", "embed_features",
                                                           "lr_multiplier", "w_avg_beta"])):
                                    draw(st.sampled_from(HOSTILE_NUMBERS + [None, "8", [8]]))}
    elif what == "tensor":
        modules = dict(generator.named_modules())
        name = draw(st.sampled_from(sorted(k for k, v in generator.named_parameters())))
        owner, _, leaf = name.rpartition(".")
        shape = draw(st.lists(st.integers(0, 9), max_size=4))
        modules[owner]._parameters[leaf] = torch.nn.Parameter(torch.zeros(shape), requires_grad=False)
    else:
        kwargs["img_resolution"] = draw(st.sampled_from([0, 3, 8, 32, 2**20, -16, 16.0]))
    try:
        return nvlabs_snapshot_bytes(generator, kwargs)
    except (TypeError, ValueError, OverflowError):  # the fixture writer copies img_resolution to an np.int64
        reject()


@st.composite
def tf_fields(draw) -> bytes:
    """A TensorFlow StyleGAN2 pickle with one static kwarg, variable or state field changed."""
    gs = stylegan2_generator(TF_SPEC, seed=0)
    network = draw(st.sampled_from([gs, *gs.state["components"].values()]))
    state = network.state
    what = draw(st.sampled_from(["kwarg", "shape", "remove", "rename", "field"]))
    variables = dict(state["variables"])
    if what == "kwarg":
        key = draw(st.sampled_from(sorted(state["static_kwargs"]) + ["resample_kernel", "conv_clamp",
                                                                      "use_noise", "nonlinearity"]))
        state["static_kwargs"][key] = draw(HOSTILE_VALUES.filter(lambda v: not isinstance(v, tuple)))
    elif what in ("shape", "remove", "rename"):
        key = draw(st.sampled_from(sorted(variables)))
        value = variables.pop(key)
        if what == "shape":
            variables[key] = np.zeros(draw(st.lists(st.integers(0, 9), max_size=5)), np.float32)
        elif what == "rename":
            variables[key + draw(st.sampled_from(["x", "/weight", "0"]))] = value
    else:
        field = draw(st.sampled_from(["version", "name", "build_func_name", "static_kwargs", "components",
                                      "variables", "build_module_src"]))
        state[field] = draw(HOSTILE_VALUES.filter(lambda v: not isinstance(v, tuple)))
    if what != "field":
        state["variables"] = list(variables.items())
    return tf_pickle_bytes(gs)


@st.composite
def rosinality_fields(draw) -> bytes:
    """A rosinality g_ema with a tensor reshaped, removed, replaced or blocks added."""
    state: dict[str, Any] = rosinality_state()
    checkpoint: dict[str, Any] = {"g_ema": state, "latent_avg": torch.zeros(8)}
    for _ in range(draw(st.integers(1, 2))):
        key = draw(st.sampled_from(sorted(state)))
        what = draw(st.sampled_from(["shape", "remove", "value", "blocks", "latent_avg"]))
        if what == "shape":
            state[key] = torch.zeros(draw(st.lists(st.integers(0, 7), max_size=5)))
        elif what == "remove":
            state.pop(key, None)
        elif what == "value":
            state[key] = draw(st.sampled_from([1, "x", None, 2.5, [1, 2]]))
        elif what == "blocks":
            for k in range(4, 4 + 2 * draw(st.integers(1, 24))):
                state[f"convs.{k}.conv.weight"] = torch.zeros(1, 4, 4, 3, 3)
        else:
            checkpoint["latent_avg"] = draw(st.sampled_from([torch.zeros(3), torch.full((8,), float("nan")), 5]))
    return _torch_bytes(checkpoint)


def _safetensors_with_header(weights: bytes, header: bytes, keep_length: bool) -> bytes:
    (length,) = struct.unpack("<Q", weights[:8])
    prefix = weights[:8] if keep_length else struct.pack("<Q", len(header))
    return prefix + header + weights[8 + length:]


@st.composite
def safetensors_headers(draw, weights: bytes) -> bytes:
    (length,) = struct.unpack("<Q", weights[:8])
    header = json.loads(weights[8:8 + length])
    under = st.sampled_from([lambda p: True, lambda p: p[-1] in ("dtype", "shape", "data_offsets")
                             or (len(p) > 1 and p[-2] in ("shape", "data_offsets"))])
    text = draw(mutated_json(header, draw(under)))
    return _safetensors_with_header(weights, text, keep_length=draw(st.booleans()))


# ---- the readers -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FuzzedReader:
    name: str  # the row of the report
    read: Callable[[Path], Any]
    files: Callable[[Valid], st.SearchStrategy[Files]]
    examples: int  # in the normal suite


def _one(name: str, contents: st.SearchStrategy[bytes]) -> st.SearchStrategy[Files]:
    return contents.map(lambda data: {name: data})


def _json_file(name: str, document: dict, under: Callable[[tuple], bool] = lambda path: True):
    text = _dumps(document).encode()
    return _one(name, st.one_of(mutated_json(document, under), mutated_json(document, under),
                                mutated_bytes(text), garbage()))


def _inside(word: str) -> Callable[[tuple], bool]:
    return lambda path: word in path


def _direction_npy(valid: Valid) -> st.SearchStrategy[Files]:
    sidecar = _dumps(valid.direction_sidecar).encode()
    npy = st.one_of(mutated_bytes(valid.direction_npy), arrays().map(_npy), garbage())
    json_file = st.one_of(st.just(sidecar), mutated_json(valid.direction_sidecar), mutated_bytes(sidecar))
    return st.builds(lambda n, j: {"d.npy": n, "d.json": j}, npy, json_file)


def _direction_pt(valid: Valid) -> st.SearchStrategy[Files]:
    payloads = st.one_of(
        arrays().filter(lambda a: a.dtype.kind in "fiub").map(lambda a: torch.from_numpy(np.array(a))),
        st.dictionaries(st.sampled_from(["direction", "w", "x", "y"]),
                        st.one_of(st.just(torch.zeros(8)), st.just(torch.zeros(2, 3)), st.integers(), st.none()),
                        max_size=3),
        st.sampled_from([[1, 2], "text", None, 3.5]))
    made = payloads.map(_torch_bytes)
    return _one("d.pt", st.one_of(made, made.flatmap(mutated_bytes), garbage()))


def _csv(valid: Valid) -> st.SearchStrategy[Files]:
    text = ",".join(str(v) for v in np.linspace(-1, 1, 8)).encode()
    cells = st.one_of(st.floats().map(str), st.sampled_from(["", "x", "nan", "1e999", "#", "\t", "1,,2"]))
    generated = st.lists(st.lists(cells, max_size=9).map(",".join), max_size=7).map(lambda rows: "\n".join(rows).encode())
    return _one("d.csv", st.one_of(mutated_bytes(text), generated, garbage()))


def _latent_npy(valid: Valid) -> st.SearchStrategy[Files]:
    good = _npy(np.zeros((6, 8), np.float32))
    return _one("l.npy", st.one_of(mutated_bytes(good), arrays().map(_npy), garbage()))


def _latent_npz(valid: Valid) -> st.SearchStrategy[Files]:
    buffer = io.BytesIO()
    np.savez(buffer, format=np.array(userfiles.LATENT_FORMAT), version=np.array(1),
             w=np.zeros((6, 8), np.float32), model_hash=np.array(""), source=np.array("me.jpg"),
             **{"noise.b8.conv0": np.zeros((8, 4), np.float32)})
    return _one("l.npz", st.one_of(mutated_bytes(buffer.getvalue()), garbage()))


def _clipboard(valid: Valid) -> st.SearchStrategy[Files]:
    document = {userfiles.CLIPBOARD_LATENT_KEY: np.zeros((6, 8)).tolist()}
    return _json_file("clipboard.txt", document)


def _png_scene(valid: Valid) -> st.SearchStrategy[Files]:
    text = _dumps(valid.scene_json).encode()
    good = png_bytes(np.zeros((4, 4, 3), np.uint8), valid_scene())
    return _one("s.png", st.one_of(mutated_bytes(good), mutated_json(valid.scene_json).map(png_carrying),
                                   mutated_bytes(text).map(png_carrying), garbage()))


def _native_config(valid: Valid) -> st.SearchStrategy[Files]:
    sidecar = mutated_json(valid.native_sidecar, lambda path: path[0] in ("config", "resolution", "architecture"))
    return st.builds(lambda j: {"g.safetensors": valid.native_weights, "g.json": j}, sidecar)


def _native_weights(valid: Valid) -> st.SearchStrategy[Files]:
    weights = st.one_of(safetensors_headers(valid.native_weights), safetensors_headers(valid.native_weights),
                        mutated_bytes(valid.native_weights))
    return weights.map(lambda w: {"g.safetensors": w})  # the description inside it is read


def _nvlabs(valid: Valid) -> st.SearchStrategy[Files]:
    return _one("g.pkl", st.one_of(nvlabs_fields(), nvlabs_fields(), mutated_bytes(valid.nvlabs_pickle)))


def _tf(valid: Valid) -> st.SearchStrategy[Files]:
    return _one("g.pkl", st.one_of(tf_fields(), tf_fields(), mutated_bytes(valid.tf_pickle)))


def _rosinality(valid: Valid) -> st.SearchStrategy[Files]:
    return _one("g.pt", st.one_of(rosinality_fields(), rosinality_fields(), mutated_bytes(valid.rosinality_pt)))


def _read_text_latent(path: Path) -> Any:
    return userfiles.latent_from_text(path.read_bytes().decode("utf-8", "replace"), MODEL, str(path))


READERS = [
    FuzzedReader("scene (.json)", userfiles.read_scene, lambda v: _json_file("s.json", v.scene_json), 150),
    FuzzedReader("scene in a PNG", userfiles.read_scene, _png_scene, 100),
    FuzzedReader("recipe", userfiles.read_recipe, lambda v: _json_file("r.json", v.recipe_json), 150),
    FuzzedReader("edits (in a scene)", userfiles.read_scene,
                 lambda v: _one("s.json", mutated_json(v.scene_json, _inside("edits"))), 150),
    FuzzedReader("masks (in a scene)", userfiles.read_scene,
                 lambda v: _one("s.json", mutated_json(v.scene_json, _inside("mask"))), 150),
    FuzzedReader("anchors (in a scene)", userfiles.read_scene,
                 lambda v: _one("s.json", mutated_json(v.scene_json, _inside("anchor"))), 150),
    FuzzedReader("direction (.npy + .json)", lambda p: userfiles.read_direction(p, MODEL), _direction_npy, 150),
    FuzzedReader("direction (.pt)", lambda p: userfiles.read_direction(p, MODEL), _direction_pt, 100),
    FuzzedReader("direction (.csv)", lambda p: userfiles.read_direction(p, MODEL), _csv, 150),
    FuzzedReader("latent (.npy)", lambda p: userfiles.read_latent(p, MODEL), _latent_npy, 150),
    FuzzedReader("latent file (.npz)", lambda p: userfiles.read_latent_file(p, MODEL), _latent_npz, 150),
    FuzzedReader("latent (clipboard text)", _read_text_latent, _clipboard, 150),
    FuzzedReader("native checkpoint (JSON description)", load_checkpoint, _native_config, 50),
    FuzzedReader("native checkpoint (safetensors header)", load_checkpoint, _native_weights, 50),
    FuzzedReader("NVlabs pickle", load_checkpoint, _nvlabs, 50),
    FuzzedReader("rosinality .pt", load_checkpoint, _rosinality, 50),
    FuzzedReader("TensorFlow pickle", load_checkpoint, _tf, 50),
]
