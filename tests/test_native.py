"""Native checkpoints: exact round trips, the embedded description, and clean errors for damage."""

import json

import pytest
import torch
from safetensors.torch import save_file

from ganinterface.models.base import CheckpointError
from ganinterface.models.native import generator_hash, load_native, save_native, sidecar_path
from ganinterface.models.stylegan2 import StyleGAN2Generator


def make_generator(width=None, architecture="skip", c_dim=0):
    torch.manual_seed(3)
    g = StyleGAN2Generator(z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=8, img_channels=3,
                           mapping_kwargs=dict(num_layers=2), channel_base=32, channel_max=4,
                           architecture=architecture, img_width=width)
    with torch.no_grad():
        for name, p in g.named_parameters():
            if name.endswith("noise_strength") or name.endswith("bias"):
                p.add_(0.3)
        g.mapping_network.w_avg.normal_()
    return g


def images(g, c_dim=0):
    z = torch.from_numpy(__import__("numpy").random.RandomState(0).randn(2, g.z_dim)).float()
    c = torch.eye(c_dim)[:2] if c_dim else None
    return g(z, c, truncation_psi=0.7)


@pytest.mark.parametrize("width, architecture, c_dim", [(None, "skip", 0), (16, "resnet", 3), (4, "orig", 0)])
def test_round_trip_is_exact(tmp_path, width, architecture, c_dim):
    g = make_generator(width, architecture, c_dim)
    path = tmp_path / "model.safetensors"
    save_native(g, path, provenance={"source": "unit test"}, model_card="tiny")
    loaded = load_native(path)
    assert isinstance(loaded, StyleGAN2Generator) and not loaded.training
    assert torch.equal(images(loaded, c_dim), images(g, c_dim))
    assert generator_hash(loaded) == generator_hash(g)
    assert (loaded.img_height, loaded.img_width) == (g.img_height, g.img_width)
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar["format"] == "ganinterface.generator" and sidecar["version"] == 1
    assert sidecar["architecture"] == "stylegan2"
    assert sidecar["resolution"] == [8, width or 8]
    assert (sidecar["z_dim"], sidecar["w_dim"], sidecar["c_dim"]) == (8, 8, c_dim)
    assert sidecar["provenance"] == {"source": "unit test"} and sidecar["model_card"] == "tiny"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.safetensors"]  # no temporaries


def test_embedded_description_is_used_without_sidecar(tmp_path):
    g = make_generator(width=16)
    path = tmp_path / "model.safetensors"
    save_native(g, path)
    sidecar_path(path).unlink()
    assert torch.equal(images(load_native(path)), images(g))


def test_sidecar_wins_over_embedded_description(tmp_path):
    path = saved(tmp_path)
    rewrite_description(path, lambda d: dict(d, architecture="stylegan9"))
    with pytest.raises(CheckpointError, match="unknown architecture 'stylegan9'"):
        load_native(path)


def test_hash_depends_on_every_weight():
    a, b = make_generator(), make_generator()
    assert generator_hash(a) == generator_hash(b)
    with torch.no_grad():
        b.synthesis.b8.torgb.bias[0] += 1e-6
    assert generator_hash(a) != generator_hash(b)
    assert len(generator_hash(a)) == 64


def test_non_json_provenance_is_refused_before_writing(tmp_path):
    path = tmp_path / "m.safetensors"
    with pytest.raises(ValueError, match="JSON"):
        save_native(make_generator(), path, provenance={"when": object()})
    assert list(tmp_path.iterdir()) == []


def test_saving_over_a_json_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="safetensors"):
        save_native(make_generator(), tmp_path / "m.json")


# ---- broken files ------------------------------------------------------------------------------------
def saved(tmp_path):
    path = tmp_path / "m.safetensors"
    save_native(make_generator(), path)
    return path


def rewrite_description(path, edit):
    document = json.loads(sidecar_path(path).read_text())
    sidecar_path(path).write_text(json.dumps(edit(document)))


def one_line(error: CheckpointError) -> str:
    message = str(error)
    assert "\n" not in message
    return message


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CheckpointError, match="no such file") as info:
        load_native(tmp_path / "absent.safetensors")
    assert "absent.safetensors" in one_line(info.value)
    with pytest.raises(CheckpointError, match="directory"):
        load_native(tmp_path)


def test_missing_sidecar_and_metadata(tmp_path):
    path = tmp_path / "bare.safetensors"
    save_file({k: v.contiguous() for k, v in make_generator().state_dict().items()}, str(path))
    with pytest.raises(CheckpointError, match="neither bare.json beside it nor") as info:
        load_native(path)
    assert str(path) in one_line(info.value)


def test_invalid_sidecar_json(tmp_path):
    path = saved(tmp_path)
    sidecar_path(path).write_text('{"format": "ganinterface.generator",')
    with pytest.raises(CheckpointError, match=r"m\.json: invalid JSON .*line 1"):
        load_native(path)


def test_wrong_format_and_version(tmp_path):
    path = saved(tmp_path)
    rewrite_description(path, lambda d: dict(d, version=7))
    with pytest.raises(CheckpointError, match="version 7"):
        load_native(path)
    rewrite_description(path, lambda d: dict(d, version=1, format="something else"))
    with pytest.raises(CheckpointError, match="not a ganinterface generator"):
        load_native(path)


def test_wrong_shapes_name_the_key(tmp_path):
    path = saved(tmp_path)
    rewrite_description(path, lambda d: dict(d, config=dict(d["config"], channel_max=2)))
    with pytest.raises(CheckpointError, match=r"synthesis\.b4\.const has shape \(4, 4, 4\), the config needs \(2, 4, 4\)"):
        load_native(path)


def test_missing_and_extra_tensors(tmp_path):
    path = tmp_path / "m.safetensors"
    g = make_generator()
    save_native(g, path)
    description = sidecar_path(path).read_text()
    weights = {k: v.contiguous() for k, v in g.state_dict().items()}
    del weights["synthesis.b8.conv1.weight"]
    save_file(weights, str(path))
    with pytest.raises(CheckpointError, match=r"weights missing for synthesis\.b8\.conv1\.weight"):
        load_native(path)
    weights = {k: v.contiguous() for k, v in g.state_dict().items()}
    weights["synthesis.b16.const"] = torch.zeros(1)
    save_file(weights, str(path))
    sidecar_path(path).write_text(description)
    with pytest.raises(CheckpointError, match=r"unexpected tensor synthesis\.b16\.const"):
        load_native(path)


def test_bad_config_values(tmp_path):
    path = saved(tmp_path)
    rewrite_description(path, lambda d: dict(d, config=dict(d["config"], architecture="fancy")))
    with pytest.raises(CheckpointError, match="invalid stylegan2 config"):
        load_native(path)
    rewrite_description(path, lambda d: dict(d, config={"z_dim": 8}))
    with pytest.raises(CheckpointError, match="invalid stylegan2 config"):
        load_native(path)


@pytest.mark.parametrize("content", [b"", b"\x00" * 7, b"garbage that is not safetensors at all"])
def test_damaged_weights_file(tmp_path, content):
    path = tmp_path / "m.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a readable safetensors file") as info:
        load_native(path)
    one_line(info.value)


def test_truncated_weights_file(tmp_path):
    path = saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_native(path)


def test_stylegan3_round_trip(tmp_path):
    stylegan3 = pytest.importorskip("ganinterface.models.stylegan3")
    torch.manual_seed(0)
    g = stylegan3.StyleGAN3Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
                                     mapping_kwargs=dict(num_layers=1), channel_base=256, channel_max=8,
                                     num_layers=4, magnitude_ema_beta=0.999)
    path = tmp_path / "sg3.safetensors"
    save_native(g, path)
    loaded = load_native(path)
    assert type(loaded) is type(g) and loaded.architecture == g.architecture
    z = torch.randn(1, 8)
    assert torch.equal(loaded(z), g(z))
    assert generator_hash(loaded) == generator_hash(g)
