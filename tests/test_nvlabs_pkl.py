"""NVlabs .pkl loading: realistic snapshots load exactly; hostile pickles are refused and never run."""

from __future__ import annotations

import collections
import copy
import io
import os
import pickle
import struct
import subprocess
import sys

import pytest
import torch

from ganinterface.models.base import CheckpointError
from ganinterface.models.loading import load_checkpoint, load_generator
from ganinterface.models.nvlabs_pkl import PersistentRecord, identify_architecture
from ganinterface.models.stylegan2 import StyleGAN2Generator
from nvlabs_fixtures import (
    TINY_STYLEGAN2_KWARGS,
    CallOnUnpickle,
    file_writing_code,
    nvlabs_snapshot_bytes,
    same_weights,
    tiny_trained_stylegan2,
    write_nvlabs_snapshot,
)


def _render(generator, seed=3, psi=0.7):
    z = torch.randn(2, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return generator(z, truncation_psi=psi, noise_mode="const")


# ---- realistic snapshots ---------------------------------------------------------------------------

def test_snapshot_loads_with_identical_weights_config_and_images(tmp_path):
    source = tiny_trained_stylegan2(seed=1)
    path = write_nvlabs_snapshot(tmp_path / "network-snapshot-000100.pkl", source, TINY_STYLEGAN2_KWARGS)
    loaded = load_checkpoint(path)
    assert loaded.format == "nvlabs-pickle"
    assert isinstance(loaded.generator, StyleGAN2Generator)
    assert not loaded.generator.training
    assert same_weights(loaded.generator, source)
    assert loaded.generator.config() == source.config()
    assert torch.equal(_render(loaded.generator), _render(source))


def test_numpy1_global_names_are_accepted(tmp_path):
    data = nvlabs_snapshot_bytes(tiny_trained_stylegan2(), TINY_STYLEGAN2_KWARGS, protocol=3, numpy1_names=True)
    assert b"numpy.core.multiarray\nscalar" in data and b"numpy._core" not in data
    (tmp_path / "np1.pkl").write_bytes(data)
    assert same_weights(load_generator(tmp_path / "np1.pkl"), tiny_trained_stylegan2())


def test_protocol2_pickle_with_codecs_encoded_bytes_loads(tmp_path):
    data = nvlabs_snapshot_bytes(tiny_trained_stylegan2(), TINY_STYLEGAN2_KWARGS, protocol=2)
    assert b"_codecs\nencode" in data
    (tmp_path / "p2.pkl").write_bytes(data)
    assert same_weights(load_generator(tmp_path / "p2.pkl"), tiny_trained_stylegan2())


def test_bare_pickled_generator_loads(tmp_path):
    path = write_nvlabs_snapshot(tmp_path / "G.pkl", tiny_trained_stylegan2(), TINY_STYLEGAN2_KWARGS, snapshot=False)
    assert same_weights(load_generator(path), tiny_trained_stylegan2())


def test_snapshot_prefers_G_ema_over_G(tmp_path):
    from nvlabs_fixtures import fake_nvlabs_modules, persistent_tree

    g_ema, g = tiny_trained_stylegan2(seed=1), tiny_trained_stylegan2(seed=2)
    with fake_nvlabs_modules() as fake:
        trees = {name: persistent_tree(net, "Generator", TINY_STYLEGAN2_KWARGS, fake.EasyDict)
                 for name, net in (("G_ema", g_ema), ("G", g))}
        (tmp_path / "both.pkl").write_bytes(pickle.dumps(dict(G=trees["G"], G_ema=trees["G_ema"])))
        (tmp_path / "only_g.pkl").write_bytes(pickle.dumps(dict(G=trees["G"], D=None)))
    assert same_weights(load_generator(tmp_path / "both.pkl"), g_ema)
    assert same_weights(load_generator(tmp_path / "only_g.pkl"), g)


def test_stylegan2_ada_style_synthesis_kwargs_load(tmp_path):
    kwargs = copy.deepcopy(TINY_STYLEGAN2_KWARGS)
    synthesis = {k: kwargs.pop(k) for k in ("channel_base", "channel_max", "num_fp16_res", "conv_clamp")}
    kwargs["synthesis_kwargs"] = synthesis
    source = tiny_trained_stylegan2(seed=4)
    path = write_nvlabs_snapshot(tmp_path / "ada.pkl", source, kwargs)
    assert torch.equal(_render(load_generator(path)), _render(source))


def test_conditional_generator_loads(tmp_path):
    source = tiny_trained_stylegan2(seed=5, c_dim=3)
    kwargs = {**TINY_STYLEGAN2_KWARGS, "c_dim": 3}
    loaded = load_generator(write_nvlabs_snapshot(tmp_path / "cond.pkl", source, kwargs))
    assert loaded.c_dim == 3 and same_weights(loaded, source)


STYLEGAN3_KWARGS = {
    "T": dict(z_dim=7, c_dim=0, w_dim=6, img_resolution=32, img_channels=3, channel_base=256, channel_max=16,
              num_layers=6, mapping_kwargs=dict(num_layers=2), magnitude_ema_beta=0.999),
    "R": dict(z_dim=7, c_dim=2, w_dim=6, img_resolution=16, img_channels=3, channel_base=512, channel_max=16,
              conv_kernel=1, use_radial_filters=True, mapping_kwargs=dict(num_layers=2)),
}


@pytest.mark.parametrize("config", ["T", "R"])
def test_stylegan3_snapshot_loads_with_identical_weights_and_images(tmp_path, config):
    from ganinterface.models.stylegan3 import StyleGAN3Generator

    torch.manual_seed(5)
    source = StyleGAN3Generator(**STYLEGAN3_KWARGS[config]).eval()
    with torch.no_grad():
        for parameter in source.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.3)
        source.w_avg.normal_()
    path = write_nvlabs_snapshot(tmp_path / "sg3.pkl", source, STYLEGAN3_KWARGS[config])
    loaded = load_checkpoint(path)
    assert loaded.generator.architecture == f"stylegan3-{config.lower()}"
    assert same_weights(loaded.generator, source)
    z = torch.randn(2, 7)
    c = torch.eye(2)[:2] if source.c_dim else None
    with torch.no_grad():
        expected = source(z, c, truncation_psi=0.7)
        assert torch.equal(loaded.generator(z, c, truncation_psi=0.7), expected)


def test_architecture_is_identified_from_the_synthesis_sub_modules():
    def record(name, children):
        return PersistentRecord(name, {"_modules": children}, module_src="")

    stylegan3 = record("Generator", {"synthesis": record("SynthesisNetwork", {"input": record("SynthesisInput", {}),
                                                                            "L0_36_512": None}),
                                     "mapping": record("MappingNetwork", {})})
    stylegan2 = record("Generator", {"synthesis": record("SynthesisNetwork", {"b4": record("SynthesisBlock", {})})})
    assert identify_architecture(stylegan3, "x.pkl") == "stylegan3"
    assert identify_architecture(stylegan2, "x.pkl") == "stylegan2"


# ---- embedded source is inert ----------------------------------------------------------------------

def test_embedded_module_source_is_never_executed(tmp_path):
    marker = tmp_path / "source-ran"
    source_code = f"open({str(marker)!r}, 'w').write('the embedded source ran')\n"
    path = write_nvlabs_snapshot(tmp_path / "src.pkl", tiny_trained_stylegan2(), TINY_STYLEGAN2_KWARGS,
                                 module_src=source_code)
    assert source_code.encode() in path.read_bytes()
    assert same_weights(load_generator(path), tiny_trained_stylegan2())
    assert not marker.exists()


# ---- hostile pickles -------------------------------------------------------------------------------

def _shell_command(marker) -> str:
    return f'"{sys.executable}" -c "{file_writing_code(marker)}"'


def _os_system_opcodes(marker) -> bytes:
    """``os.system(cmd)`` written with raw opcodes, so the global reads "os.system" (not posix)."""
    command = _shell_command(marker).encode()
    return b"\x80\x02cos\nsystem\nX" + struct.pack("<I", len(command)) + command + b"\x85R."


def _payloads(marker) -> dict[str, tuple[bytes, str]]:
    """name -> (pickle bytes, the global the refusal must name)."""
    code = file_writing_code(marker)
    system_module = os.system.__module__  # "posix" on Linux and macOS

    def snapshot_with(evil):
        return pickle.dumps({"G_ema": evil, "D": None})

    return {
        "os.system": (_os_system_opcodes(marker), "os.system"),
        "posix.system": (snapshot_with(CallOnUnpickle(os.system, _shell_command(marker))), f"{system_module}.system"),
        "subprocess": (pickle.dumps(CallOnUnpickle(subprocess.call, [sys.executable, "-c", code])), "subprocess.call"),
        "exec": (pickle.dumps(CallOnUnpickle(exec, code)), "builtins.exec"),
        "eval": (snapshot_with(CallOnUnpickle(eval, code)), "builtins.eval"),
        "getattr": (pickle.dumps(CallOnUnpickle(getattr, collections.OrderedDict, "fromkeys")), "builtins.getattr"),
        "nested-reduce": (pickle.dumps({"G_ema": collections.OrderedDict(
            a=[1, {"b": CallOnUnpickle(exec, code)}])}), "builtins.exec"),
        "inside-a-network": (nvlabs_snapshot_bytes(
            tiny_trained_stylegan2(), TINY_STYLEGAN2_KWARGS,
            extra_state={"hook": CallOnUnpickle(exec, code)}), "builtins.exec"),
    }


FILE_WRITING_PAYLOADS = ["os.system", "posix.system", "subprocess", "exec", "eval", "nested-reduce"]
PAYLOAD_NAMES = [*FILE_WRITING_PAYLOADS, "getattr", "inside-a-network"]


@pytest.mark.parametrize("name", FILE_WRITING_PAYLOADS)
def test_hostile_payloads_would_really_run_under_plain_pickle(tmp_path, name):
    """Guards the refusal test below: each payload does create the file when unpickled naively."""
    marker = tmp_path / "pwned"
    data, _ = _payloads(marker)[name]
    try:
        pickle.loads(data)
    except Exception:  # the payload ran; whatever it returned is not a valid snapshot
        pass
    assert marker.exists()


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_hostile_payloads_are_refused_and_never_run(tmp_path, name):
    marker = tmp_path / "pwned"
    data, global_name = _payloads(marker)[name]
    path = tmp_path / f"{name}.pkl"
    path.write_bytes(data)
    with pytest.raises(CheckpointError) as caught:
        load_generator(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message and global_name in message and "allow-list" in message
    assert not marker.exists()


def _storage_blobs(marker) -> dict[str, bytes]:
    evil = CallOnUnpickle(exec, file_writing_code(marker))
    legacy = io.BytesIO()
    torch.save(evil, legacy, _use_new_zipfile_serialization=False)
    zipped = io.BytesIO()
    torch.save(evil, zipped)
    return {"plain-pickle": pickle.dumps(evil, protocol=2), "legacy-torch-save": legacy.getvalue(),
            "zip-torch-save": zipped.getvalue()}


@pytest.mark.parametrize("kind", ["plain-pickle", "legacy-torch-save", "zip-torch-save"])
def test_malicious_tensor_storage_blob_is_refused(tmp_path, kind):
    marker = tmp_path / "pwned"
    blob = _storage_blobs(marker)[kind]
    if kind != "plain-pickle":  # torch's own _load_from_bytes would run it
        torch.load(io.BytesIO(blob), weights_only=False)
        assert marker.exists()
        marker.unlink()
    fake_tensor = CallOnUnpickle(torch._utils._rebuild_tensor_v2,
                          CallOnUnpickle(torch.storage._load_from_bytes, blob), 0, (1,), (1,), False,
                          collections.OrderedDict())
    path = tmp_path / "storage.pkl"
    path.write_bytes(pickle.dumps({"G_ema": fake_tensor}))
    with pytest.raises(CheckpointError) as caught:
        load_generator(path)
    assert "\n" not in str(caught.value) and "tensor storage" in str(caught.value)
    assert not marker.exists()


def test_persistent_ids_are_refused(tmp_path):
    class WithPersistentId(pickle.Pickler):
        def persistent_id(self, obj):
            return "external" if obj == "ref" else None

    stream = io.BytesIO()
    WithPersistentId(stream).dump({"G_ema": "ref"})
    path = tmp_path / "pid.pkl"
    path.write_bytes(stream.getvalue())
    with pytest.raises(CheckpointError, match="persistent"):
        load_generator(path)


# ---- broken but harmless snapshots -----------------------------------------------------------------

def test_unknown_network_class_is_named(tmp_path):
    path = write_nvlabs_snapshot(tmp_path / "d.pkl", tiny_trained_stylegan2(), TINY_STYLEGAN2_KWARGS,
                                 class_name="Discriminator")
    with pytest.raises(CheckpointError, match="unsupported network class.*Discriminator"):
        load_generator(path)


def test_shape_mismatch_names_the_key(tmp_path):
    kwargs = {**TINY_STYLEGAN2_KWARGS, "channel_max": 16}  # the weights were made with channel_max 8
    path = write_nvlabs_snapshot(tmp_path / "shape.pkl", tiny_trained_stylegan2(), kwargs)
    with pytest.raises(CheckpointError, match=r"synthesis\.b4\.const has shape \(8, 4, 4\).*\(16, 4, 4\)"):
        load_generator(path)


def test_missing_weight_names_the_key(tmp_path):
    source = tiny_trained_stylegan2()
    del source.synthesis.b8.conv1._parameters["bias"]
    path = write_nvlabs_snapshot(tmp_path / "missing.pkl", source, TINY_STYLEGAN2_KWARGS)
    with pytest.raises(CheckpointError, match=r"weights missing for synthesis\.b8\.conv1\.bias"):
        load_generator(path)


def test_pickle_of_something_else_is_refused(tmp_path):
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(CheckpointError, match="holds a list, not an NVlabs network"):
        load_generator(path)
    path.write_bytes(pickle.dumps({"G": 1, "D": 2}))
    with pytest.raises(CheckpointError, match="no G_ema or G network"):
        load_generator(path)


def test_tensorflow_network_without_state_is_refused_in_its_own_terms(tmp_path):
    path = tmp_path / "stylegan2-ffhq-config-f.pkl"
    path.write_bytes(b"\x80\x03cdnnlib.tflib.network\nNetwork\nq\x00)\x81q\x01.")
    with pytest.raises(CheckpointError, match="TensorFlow network state version None is not one"):
        load_generator(path)


def test_a_huge_memo_index_allocates_nothing(tmp_path):
    """C's unpickler sizes its memo by the largest index a file names: 2**31 would take 16 GB."""
    import tracemalloc

    path = tmp_path / "memo.pkl"
    path.write_bytes(b"\x80\x03N" + b"r" + struct.pack("<I", 2**31 - 1) + b".")  # None; LONG_BINPUT
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="holds a NoneType"):
            load_generator(path)
        assert tracemalloc.get_traced_memory()[1] < 64 << 20
    finally:
        tracemalloc.stop()
