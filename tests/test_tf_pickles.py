"""TensorFlow-era NVlabs pickles: the reader (plain data, nothing run), StyleGAN2 from TF with
NVlabs' conversion numerics, and the hostile corpus."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from ganinterface.models import load_generator, tf_pickle
from ganinterface.models.base import CheckpointError
from ganinterface.models.loading import FORMAT_TF_PICKLE, load_checkpoint
from tf_fixtures import (
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


def test_info_names_era_and_architecture(tmp_path, capsys):
    from ganinterface.cli import main

    spec = TFStyleGAN2Spec(flavour="ada", label_size=3, architecture="resnet", resolution=16)
    path = write_stylegan2_tf(tmp_path / "ada.pkl", spec)
    loaded = load_checkpoint(path)
    assert loaded.format == FORMAT_TF_PICKLE
    assert main(["info", str(path)]) == 0
    assert ("model:         StyleGAN2-ADA (resnet, conditional, 3 classes), TensorFlow pickle, "
            "16 × 16 px, 6 ws\n") in capsys.readouterr().out


@pytest.mark.slow
def test_info_names_nvlabs_config_f(tmp_path):
    spec = TFStyleGAN2Spec(fmap_base=16384, fmap_max=512, resolution=8)
    loaded = load_checkpoint(write_stylegan2_tf(tmp_path / "ffhq.pkl", spec))
    assert loaded.description == "StyleGAN2 (config-f), TensorFlow pickle, 8 × 8 px, 4 ws"


def test_unknown_build_function_is_refused_naming_it(tmp_path):
    path = write_tf_pickle(tmp_path / "pggan.pkl", tf_network("G", "G_paper", {}, {}, version=2))
    with pytest.raises(CheckpointError, match=r"pggan\.pkl: .*built by 'G_paper', which is not a generator"):
        load_generator(path)


# ---- StyleGAN2 from TensorFlow: parity with NVlabs' conversion and with TF semantics --------------

def nvlabs_conversion(network) -> dict:
    """NVlabs' TF -> PyTorch rules (stylegan2-ada-pytorch legacy.convert_tf_generator), restated
    independently: init kwargs from the static kwargs with NVlabs' defaults, tensors by name."""
    kw = network.static_kwargs
    init_kwargs = dict(
        z_dim=kw.get("latent_size", 512), c_dim=kw.get("label_size", 0), w_dim=kw.get("dlatent_size", 512),
        img_resolution=kw.get("resolution", 1024), img_channels=kw.get("num_channels", 3),
        mapping_kwargs=dict(num_layers=kw.get("mapping_layers", 8), embed_features=kw.get("label_fmaps"),
                            layer_features=kw.get("mapping_fmaps"), activation="lrelu", lr_multiplier=0.01,
                            w_avg_beta=0.995),
        synthesis_kwargs=dict(channel_base=kw.get("fmap_base", 16384) * 2, channel_max=kw.get("fmap_max", 512),
                              num_fp16_res=0, conv_clamp=kw.get("conv_clamp"),
                              architecture=kw.get("architecture", "skip"),
                              resample_filter=[1, 3, 3, 1], use_noise=True, activation="lrelu"))
    tf = {}

    def collect(prefix, net):
        tf.update({prefix + name: value for name, value in net.variables.items()})
        for name, component in net.components.items():
            collect(f"{prefix}{name}/", component)

    collect("", network)
    torch_ = lambda a: torch.from_numpy(np.array(a, dtype=np.float32))  # noqa: E731
    conv = lambda a: torch_(a.transpose(3, 2, 0, 1))  # noqa: E731
    conv_up = lambda a: torch_(a[::-1, ::-1].transpose(3, 2, 0, 1))  # noqa: E731
    sd = {"mapping.w_avg": torch_(tf["dlatent_avg"])}
    for i in range(init_kwargs["mapping_kwargs"]["num_layers"]):
        sd[f"mapping.fc{i}.weight"] = torch_(tf[f"mapping/Dense{i}/weight"].T)
        sd[f"mapping.fc{i}.bias"] = torch_(tf[f"mapping/Dense{i}/bias"])
    if init_kwargs["c_dim"]:
        sd["mapping.embed.weight"] = torch_(tf["mapping/LabelEmbed/weight"].T)
        sd["mapping.embed.bias"] = torch_(tf["mapping/LabelEmbed/bias"])

    def layer(prefix, scope, noise_index, up=False, noise=True):
        sd[f"{prefix}.weight"] = (conv_up if up else conv)(tf[f"{scope}/weight"])
        sd[f"{prefix}.bias"] = torch_(tf[f"{scope}/bias"])
        sd[f"{prefix}.affine.weight"] = torch_(tf[f"{scope}/mod_weight"].T)
        sd[f"{prefix}.affine.bias"] = torch_(tf[f"{scope}/mod_bias"] + 1)
        if noise:
            sd[f"{prefix}.noise_const"] = torch_(tf[f"synthesis/noise{noise_index}"][0, 0])
            sd[f"{prefix}.noise_strength"] = torch_(tf[f"{scope}/noise_strength"])

    log2 = int(np.log2(init_kwargs["img_resolution"]))
    architecture = init_kwargs["synthesis_kwargs"]["architecture"]
    sd["synthesis.b4.const"] = torch_(tf["synthesis/4x4/Const/const"][0])
    layer("synthesis.b4.conv1", "synthesis/4x4/Conv", 0)
    for res in range(2, log2 + 1):
        r = 2**res
        if res > 2:
            layer(f"synthesis.b{r}.conv0", f"synthesis/{r}x{r}/Conv0_up", res * 2 - 5, up=True)
            layer(f"synthesis.b{r}.conv1", f"synthesis/{r}x{r}/Conv1", res * 2 - 4)
            if architecture == "resnet":
                sd[f"synthesis.b{r}.skip.weight"] = conv_up(tf[f"synthesis/{r}x{r}/Skip/weight"])
        if architecture == "skip" or res == log2:
            layer(f"synthesis.b{r}.torgb", f"synthesis/{r}x{r}/ToRGB", None, noise=False)
    from ganinterface.models.ops import setup_filter

    for res in range(2, log2 + 1):  # fixed buffers NVlabs' converter leaves as constructed
        r = 2**res
        sd[f"synthesis.b{r}.resample_filter"] = setup_filter([1, 3, 3, 1])
        for name in ("conv0", "conv1"):
            if res > 2 or name == "conv1":
                sd[f"synthesis.b{r}.{name}.resample_filter"] = setup_filter([1, 3, 3, 1])
        if architecture == "resnet" and res > 2:
            sd[f"synthesis.b{r}.skip.resample_filter"] = setup_filter([1, 3, 3, 1])
    return {"init_kwargs": init_kwargs, "state_dict": sd}


def render_both_ways(tmp_path, spec, seed=0, batch=2):
    tf_path = write_stylegan2_tf(tmp_path / "tf.pkl", spec, seed)
    converted = tmp_path / "converted.pt"
    gs = tf_pickle.read_tf_pickle(io.BytesIO(tf_path.read_bytes()), tf_path)
    torch.save(nvlabs_conversion(gs), converted)
    g_tf, g_reference = load_generator(tf_path), load_generator(converted)
    z = torch.randn([batch, g_tf.z_dim], generator=torch.Generator().manual_seed(seed))
    c = torch.eye(g_tf.c_dim)[torch.arange(batch) % g_tf.c_dim] if g_tf.c_dim else None
    with torch.no_grad():
        ws_tf, ws_ref = g_tf.mapping(z, c, truncation_psi=0.7), g_reference.mapping(z, c, truncation_psi=0.7)
        images = [g.synthesize(ws_tf, noise_mode="const").image for g in (g_tf, g_reference)]
    return ws_tf, ws_ref, *images


@pytest.mark.parametrize("spec", [
    pytest.param(TFStyleGAN2Spec(mapping_fmaps=7), id="stylegan2 skip 32px", marks=pytest.mark.slow),
    pytest.param(TFStyleGAN2Spec(architecture="resnet", resolution=16, mapping_fmaps=10),
                 id="stylegan2 resnet 16px", marks=pytest.mark.slow),
    pytest.param(TFStyleGAN2Spec(architecture="orig", resolution=16, mapping_fmaps=10),
                 id="stylegan2 orig 16px", marks=pytest.mark.slow),
    pytest.param(TFStyleGAN2Spec(flavour="ada", resolution=16, label_size=4, label_fmaps=10,
                                 conv_clamp=0.5, mapping_layers=3), id="ada conditional clamp 16px"),
])
def test_stylegan2_from_tf_equals_nvlabs_conversion(tmp_path, spec):
    ws_tf, ws_ref, image_tf, image_ref = render_both_ways(tmp_path, spec)
    torch.testing.assert_close(ws_tf, ws_ref, atol=1e-4, rtol=0)
    assert image_tf.abs().max() > 0.1  # a render, not a blank
    torch.testing.assert_close(image_tf, image_ref, atol=1e-4, rtol=0)


# ---- a forward pass in TensorFlow's own terms (float64, loops over taps; nothing from models/) ----

def _lrelu(x):
    return torch.where(x >= 0, x, 0.2 * x) * np.sqrt(2)


def _taps(kw):
    kernel = kw.get("resample_kernel", [1, 3, 3, 1])
    return (1, 1) if kernel is None else tuple(kernel)


def _fir(x, taps, pad0, pad1, up=1):
    """upfirdn_2d of NVlabs' TF ops: zero-insert ``up``, pad, convolve with the 2-D filter."""
    n, c, h, w = x.shape
    if up > 1:
        spread = x.new_zeros([n, c, h * up, w * up])
        spread[:, :, ::up, ::up] = x
        x = spread
    x = torch.nn.functional.pad(x, [pad0, pad1, pad0, pad1])
    k = np.outer(taps, taps) / np.sum(np.outer(taps, taps)) * 4  # gain * factor**2
    k = torch.tensor(k[::-1, ::-1].copy(), dtype=x.dtype)  # convolution, not correlation
    size = k.shape[0]
    out_h, out_w = x.shape[2] - size + 1, x.shape[3] - size + 1
    return sum(x[:, :, a:a + out_h, b:b + out_w] * k[a, b] for a in range(size) for b in range(size))


def _conv_same(x, w):
    """tf.nn.conv2d(padding='SAME'), weight (kh, kw, in, out), one sample: x (in, H, W)."""
    kh = w.shape[0]
    pad = kh // 2
    xp = torch.nn.functional.pad(x, [pad, pad, pad, pad])
    h, wd = x.shape[1:]
    return sum(torch.einsum("chw,co->ohw", xp[:, a:a + h, b:b + wd], w[a, b])
               for a in range(kh) for b in range(kh))


def _upsample_conv(x, w, taps):
    """upsample_conv_2d: flipped weight, conv2d_transpose with stride 2 (VALID), then the FIR."""
    kh = w.shape[0]
    flipped = w.flip(0, 1)  # (kh, kw, in, out)
    c, h, wd = x.shape
    out = x.new_zeros([w.shape[3], (h - 1) * 2 + kh, (wd - 1) * 2 + kh])
    for a in range(kh):
        for b in range(kh):
            out[:, a:a + 2 * h:2, b:b + 2 * wd:2] += torch.einsum("chw,co->ohw", x, flipped[a, b])
    p = (len(taps) - 2) - (kh - 1)
    return _fir(out[None], taps, (p + 1) // 2 + 1, p // 2 + 1)[0]


def _modulated_conv(tf, scope, x, dlatent, taps, up=False, demodulate=True):
    w = tf[f"{scope}/weight"]
    kh, _, fan_in, _ = w.shape
    w = w / np.sqrt(kh * kh * fan_in)
    s = dlatent @ (tf[f"{scope}/mod_weight"] / np.sqrt(dlatent.shape[0])) + tf[f"{scope}/mod_bias"] + 1
    ww = w * s[None, None, :, None]
    if demodulate:
        ww = ww * torch.rsqrt((ww**2).sum(dim=[0, 1, 2]) + 1e-8)[None, None, None, :]
    return _upsample_conv(x, ww, taps) if up else _conv_same(x, ww)


def _normalize(x):
    return x * torch.rsqrt((x**2).mean(dim=1, keepdim=True) + 1e-8)


def tf_semantics_forward(network, z, labels, psi):
    """Gs.run(z, labels, truncation_psi=psi, randomize_noise=False) as the TF graph computes it."""
    tf = {k: torch.tensor(np.array(v), dtype=torch.float64) for k, v in network.all_variables().items()}
    kw = network.static_kwargs
    architecture, log2 = kw["architecture"], int(np.log2(kw["resolution"]))
    clamp, taps, use_noise = kw.get("conv_clamp"), _taps(kw), kw.get("use_noise", True)
    x = _normalize(z.double())
    if kw["label_size"]:  # StyleGAN2-ADA: LabelEmbed (dense, lrmul 1), normalised, concatenated
        weight = tf["mapping/LabelEmbed/weight"]
        y = labels.double() @ (weight / np.sqrt(weight.shape[0])) + tf["mapping/LabelEmbed/bias"]
        x = torch.cat([x, _normalize(y)], dim=1)
    for i in range(kw["mapping_layers"]):
        weight = tf[f"mapping/Dense{i}/weight"]
        x = _lrelu(x @ (weight * 0.01 / np.sqrt(weight.shape[0])) + tf[f"mapping/Dense{i}/bias"] * 0.01)
    w = tf["dlatent_avg"] + (x - tf["dlatent_avg"]) * psi  # every layer (no cutoff)

    def layer(scope, h, dl, noise_index, up=False):
        h = _modulated_conv(tf, scope, h, dl, taps, up=up)
        if use_noise:
            h = h + tf[f"synthesis/noise{noise_index}"][0] * tf[f"{scope}/noise_strength"]
        h = _lrelu(h + tf[f"{scope}/bias"][:, None, None])
        return h if clamp is None else h.clamp(-clamp, clamp)

    def torgb(scope, h, dl):
        t = _modulated_conv(tf, scope, h, dl, taps, demodulate=False) + tf[f"{scope}/bias"][:, None, None]
        return t if clamp is None else t.clamp(-clamp, clamp)

    images = []
    for sample in w:
        h = layer("synthesis/4x4/Conv", tf["synthesis/4x4/Const/const"][0], sample, 0)
        y = torgb("synthesis/4x4/ToRGB", h, sample) if architecture == "skip" else None
        for res in range(3, log2 + 1):
            scope = f"synthesis/{2**res}x{2**res}"
            t = h
            h = layer(f"{scope}/Conv0_up", h, sample, res * 2 - 5, up=True)
            h = layer(f"{scope}/Conv1", h, sample, res * 2 - 4)
            if architecture == "resnet":
                skip = tf[f"{scope}/Skip/weight"] / np.sqrt(t.shape[0])
                h = (h + _upsample_conv(t, skip, taps)) / np.sqrt(2)
            if architecture == "skip":
                p = len(taps) - 2
                y = _fir(y[None], taps, (p + 1) // 2 + 1, p // 2, up=2)[0]
            if architecture == "skip" or res == log2:
                t_rgb = torgb(f"{scope}/ToRGB", h, sample)
                y = t_rgb if y is None else y + t_rgb
        images.append(y)
    return torch.stack(images)


@pytest.mark.parametrize("spec", [
    pytest.param(TFStyleGAN2Spec(resolution=16, mapping_fmaps=7), id="skip 16px"),
    pytest.param(TFStyleGAN2Spec(resolution=8, architecture="resnet"), id="resnet 8px", marks=pytest.mark.slow),
    pytest.param(TFStyleGAN2Spec(flavour="ada", resolution=8, architecture="orig", label_size=3,
                                 label_fmaps=5, conv_clamp=1.5, mapping_layers=3),
                 id="ada conditional orig clamped 8px", marks=pytest.mark.slow),
    pytest.param(TFStyleGAN2Spec(flavour="ada", resolution=16, use_noise=False, resample_kernel=None),
                 id="ada no noise box filter 16px", marks=pytest.mark.slow),
    pytest.param(TFStyleGAN2Spec(resolution=16, architecture="resnet", resample_kernel=(1, 2, 1)),
                 id="resnet [1,2,1] filter 16px", marks=pytest.mark.slow),
])
def test_stylegan2_from_tf_equals_a_forward_in_tensorflow_semantics(tmp_path, spec):
    path = write_stylegan2_tf(tmp_path / "tiny.pkl", spec, seed=5)
    network = tf_pickle.read_tf_pickle(io.BytesIO(path.read_bytes()), path)
    generator = load_generator(path)
    z = torch.randn([2, spec.latent_size], generator=torch.Generator().manual_seed(1))
    labels = torch.eye(3)[[0, 2]] if spec.label_size else None
    with torch.no_grad():
        image = generator(z, labels, truncation_psi=0.6, noise_mode="const")
    expected = tf_semantics_forward(network, z, labels, psi=0.6)
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(image.double(), expected, atol=1e-4, rtol=0)


def test_tf_generator_resumes_from_any_layer_and_converts_to_native(tmp_path, capsys):
    from ganinterface.cli import main
    from ganinterface.models.native import load_native

    path = write_stylegan2_tf(tmp_path / "tf.pkl", TFStyleGAN2Spec(resolution=16, architecture="resnet"))
    generator = load_generator(path)
    with torch.no_grad():
        ws = generator.mapping(torch.randn([1, generator.z_dim]), truncation_psi=0.5)
        full = generator.synthesize(ws, keep_states=[3])
        resumed = generator.synthesize(ws, start=3, state=full.states[3])
    torch.testing.assert_close(resumed.image, full.image, rtol=0, atol=0)
    target = tmp_path / "native.safetensors"
    assert main(["convert", str(path), str(target)]) == 0
    assert "tensorflow-pickle -> native" in capsys.readouterr().out
    with torch.no_grad():
        torch.testing.assert_close(load_native(target).synthesize(ws).image, full.image)
