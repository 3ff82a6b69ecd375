"""StyleGAN2Generator: hand-computed tiny generators, the layer API, truncation, training paths."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from ganinterface.models.stylegan2 import StyleGAN2Generator

SQRT2 = math.sqrt(2)


def tiny(architecture="skip", resolution=16, width=None, c_dim=0, **kwargs):
    torch.manual_seed(1)
    g = StyleGAN2Generator(
        z_dim=12, c_dim=c_dim, w_dim=10, img_resolution=resolution, img_channels=3,
        mapping_kwargs=dict(num_layers=2), channel_base=64, channel_max=8, architecture=architecture,
        img_width=width, **kwargs)
    randomize(g)
    return g


def randomize(g, seed=0):
    """Make every parameter matter: noise strengths, biases and w_avg start at zero in NVlabs."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in g.named_parameters():
            if name.endswith("noise_strength"):
                p.copy_(torch.rand([], generator=gen) + 0.2)
            elif name.endswith("bias"):
                p.add_(torch.randn(p.shape, generator=gen) * 0.2)
        g.mapping_network.w_avg.copy_(torch.randn(g.w_dim, generator=gen))


@pytest.fixture(params=["training path", "inference path"])
def grad_mode(request):
    """Run a test with autograd on (NVlabs' op order) and off (the fused inference kernels)."""
    with torch.set_grad_enabled(request.param == "training path"):
        yield request.param


def lrelu(x):
    return torch.where(x >= 0, x, 0.2 * x) * SQRT2


# ---- hand-computed forward passes ------------------------------------------------------------------
def hand_mapping(g, z):
    sd = g.state_dict()
    x = z / torch.sqrt((z**2).mean(dim=1, keepdim=True) + 1e-8)
    lr = 0.01  # NVlabs default lr_multiplier: weights are stored divided by it
    for i in range(2):
        weight, bias = sd[f"mapping.fc{i}.weight"], sd[f"mapping.fc{i}.bias"]
        x = lrelu(x @ (weight * lr / math.sqrt(weight.shape[1])).T + bias * lr)
    return x


def hand_modconv(sd, prefix, x, w, demodulate=True, style_gain=1.0):
    affine_w, affine_b = sd[f"{prefix}.affine.weight"], sd[f"{prefix}.affine.bias"]
    style = (w @ affine_w.T / math.sqrt(affine_w.shape[1]) + affine_b) * style_gain
    weight = sd[f"{prefix}.weight"] * style.reshape(1, -1, 1, 1)
    if demodulate:
        weight = weight / torch.sqrt((weight**2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
    return weight


def naive_up2(x, fir=(1, 3, 3, 1), extra=0):
    """Zero insertion, padding, then the normalised 4x4 FIR (gain 4): the size doubles exactly
    (plus ``extra`` filtered pixels on every side: NVlabs pads once, before filtering)."""
    n, c, h, w = x.shape
    big = torch.zeros(n, c, 2 * h, 2 * w, dtype=x.dtype)
    big[:, :, ::2, ::2] = x
    f = torch.tensor(fir, dtype=x.dtype)
    f2 = torch.outer(f, f) / f.sum() ** 2 * 4
    big = F.pad(big, [2 + extra, 1 + extra, 2 + extra, 1 + extra])
    return F.conv2d(big, f2.flip([0, 1]).expand(c, 1, 4, 4).contiguous(), groups=c)


def test_one_block_generator_by_hand(grad_mode):
    g = tiny(resolution=4, conv_clamp=0.8)
    z = torch.randn(2, 12)
    sd = g.state_dict()
    w = hand_mapping(g, z)
    x = sd["synthesis.b4.const"].expand(2, -1, -1, -1)
    outs = []
    for n in range(2):
        weight = hand_modconv(sd, "synthesis.b4.conv1", x, w[n])
        y = F.conv2d(x[n:n + 1], weight, padding=1)
        y = y + sd["synthesis.b4.conv1.noise_const"] * sd["synthesis.b4.conv1.noise_strength"]
        y = lrelu(y + sd["synthesis.b4.conv1.bias"].reshape(1, -1, 1, 1)).clamp(-0.8, 0.8)
        rgb_weight = hand_modconv(sd, "synthesis.b4.torgb", y, w[n], demodulate=False,
                                  style_gain=1 / math.sqrt(y.shape[1]))
        rgb = F.conv2d(y, rgb_weight) + sd["synthesis.b4.torgb.bias"].reshape(1, -1, 1, 1)
        outs.append(rgb.clamp(-0.8, 0.8))
    want = torch.cat(outs)
    got = g(z)
    assert got.shape == (2, 3, 4, 4)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("architecture", ["skip", "resnet"])
def test_two_block_generator_by_hand(architecture, grad_mode):
    g = tiny(architecture=architecture, resolution=8, conv_clamp=None)
    z = torch.randn(1, 12)
    sd = g.state_dict()
    w = hand_mapping(g, z)[0]
    x = sd["synthesis.b4.const"][None]

    def layer(prefix, x, up=False, gain=1.0):
        weight = hand_modconv(sd, prefix, x, w)
        if up:  # transposed-conv-free reference: up-sample first, then a true 3x3 convolution
            y = F.conv2d(naive_up2(x, extra=1), weight.flip([2, 3]))
        else:
            y = F.conv2d(x, weight, padding=1)
        y = y + sd[f"{prefix}.noise_const"] * sd[f"{prefix}.noise_strength"]
        return lrelu(y + sd[f"{prefix}.bias"].reshape(1, -1, 1, 1)) * gain

    def torgb(prefix, x):
        weight = hand_modconv(sd, prefix, x, w, demodulate=False, style_gain=1 / math.sqrt(x.shape[1]))
        return F.conv2d(x, weight) + sd[f"{prefix}.bias"].reshape(1, -1, 1, 1)

    x4 = layer("synthesis.b4.conv1", x)
    if architecture == "skip":
        x8 = layer("synthesis.b8.conv1", layer("synthesis.b8.conv0", x4, up=True))
        want = naive_up2(torgb("synthesis.b4.torgb", x4)) + torgb("synthesis.b8.torgb", x8)
    else:
        skip_w = sd["synthesis.b8.skip.weight"] / math.sqrt(x4.shape[1])
        residual = naive_up2(F.conv2d(x4, skip_w)) * math.sqrt(0.5)
        h = layer("synthesis.b8.conv1", layer("synthesis.b8.conv0", x4, up=True), gain=math.sqrt(0.5))
        want = torgb("synthesis.b8.torgb", residual + h)
    # ws are all equal here, so which row each layer reads does not matter for this check
    torch.testing.assert_close(g(z), want, atol=2e-5, rtol=1e-5)


# ---- layer API -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("architecture", ["skip", "resnet", "orig"])
@pytest.mark.parametrize("noise_mode", ["const", "random"])
def test_resume_from_every_layer_equals_full_forward(architecture, noise_mode, grad_mode):
    g = tiny(architecture=architecture, width=8)
    ws = torch.randn(2, g.num_ws, g.w_dim)  # W+: every row different
    full = g.synthesize(ws, keep_states=range(len(g.layers) + 1), noise_mode=noise_mode, noise_seed=5)
    assert set(full.states) == set(range(len(g.layers) + 1))
    for k in range(len(g.layers) + 1):
        resumed = g.synthesize(ws, start=k, state=full.states[k], noise_mode=noise_mode, noise_seed=5)
        assert torch.equal(resumed.image, full.image), f"layer {k}"


def test_stop_early_then_resume():
    g = tiny()
    ws = torch.randn(1, g.num_ws, g.w_dim)
    first = g.synthesize(ws, stop=3, keep_states=[3])
    assert first.image.numel() == 0
    rest = g.synthesize(ws, start=3, state=first.states[3])
    torch.testing.assert_close(rest.image, g.synthesize(ws).image, atol=0, rtol=0)


def test_layer_names_w_indices_and_tap_shapes_non_square():
    g = tiny(architecture="skip", resolution=16, width=32)
    names = [layer.name for layer in g.layers]
    assert names == ["b4.conv1", "b4.torgb", "b8.conv0", "b8.conv1", "b8.torgb",
                     "b16.conv0", "b16.conv1", "b16.torgb"]
    assert [layer.w_indices for layer in g.layers] == [(0,), (1,), (1,), (2,), (3,), (3,), (4,), (5,)]
    assert g.num_ws == 6
    out = g.synthesize(torch.randn(2, g.num_ws, g.w_dim), taps=names)
    for layer in g.layers:
        assert out.taps[layer.name].shape == (2, layer.channels, layer.height, layer.width)
    assert (g.layers[0].height, g.layers[0].width) == (4, 8)
    assert out.image.shape == (2, 3, 16, 32)


def test_orig_and_resnet_have_one_torgb_reading_the_last_w():
    for architecture in ("orig", "resnet"):
        g = tiny(architecture=architecture)
        assert [layer.name for layer in g.layers if layer.kind == "torgb"] == ["b16.torgb"]
        assert g.layers[-1].w_indices == (g.num_ws - 1,)


def test_hook_changes_only_downstream(grad_mode):
    g = tiny()
    ws = torch.randn(1, g.num_ws, g.w_dim)
    names = [layer.name for layer in g.layers]
    k = g.layer_index("b8.conv1")
    base = g.synthesize(ws, taps=names)

    def bump(x):
        x = x.clone()
        x[:, 0] += 1.0
        return x

    hooked = g.synthesize(ws, taps=names, hooks={"b8.conv1": bump})
    for i, name in enumerate(names):
        same = torch.equal(hooked.taps[name], base.taps[name])
        assert same == (i < k), name
    torch.testing.assert_close(hooked.taps["b8.conv1"] - base.taps["b8.conv1"],
                               bump(base.taps["b8.conv1"]) - base.taps["b8.conv1"])
    assert not torch.equal(hooked.image, base.image)


def test_changing_one_w_row_changes_only_layers_from_its_first_reader():
    g = tiny()
    ws = torch.randn(1, g.num_ws, g.w_dim)
    names = [layer.name for layer in g.layers]
    base = g.synthesize(ws, taps=names)
    row = 3
    ws2 = ws.clone()
    ws2[:, row] += 1.0
    changed = g.synthesize(ws2, taps=names)
    first = g.first_layer_reading(row)
    assert g.layers[first].name == "b8.torgb"  # row 3 feeds b8.torgb and b16.conv0
    for i, name in enumerate(names):
        assert torch.equal(changed.taps[name], base.taps[name]) == (i < first), name


def test_synthesize_rejects_bad_arguments():
    g = tiny()
    ws = torch.randn(1, g.num_ws, g.w_dim)
    with pytest.raises(ValueError, match="shape"):
        g.synthesize(ws[:, :-1])
    with pytest.raises(ValueError, match="state"):
        g.synthesize(ws, start=2)
    with pytest.raises(ValueError, match="noise_mode"):
        g.synthesize(ws, noise_mode="loud")
    with pytest.raises(ValueError, match="start"):
        g.synthesize(ws, start=3, stop=2, state={})
    with pytest.raises(KeyError, match="b8.conv1"):
        g.synthesize(ws, taps=["b9.conv1"])
    with pytest.raises(KeyError, match="no layer named"):
        g.synthesize(ws, hooks={"nope": lambda x: x})


# ---- noise -----------------------------------------------------------------------------------------------
def test_noise_modes():
    g = tiny()
    ws = torch.randn(1, g.num_ws, g.w_dim)
    const = g.synthesize(ws, noise_mode="const").image
    none = g.synthesize(ws, noise_mode="none").image
    r1 = g.synthesize(ws, noise_mode="random", noise_seed=1).image
    r1b = g.synthesize(ws, noise_mode="random", noise_seed=1).image
    r2 = g.synthesize(ws, noise_mode="random", noise_seed=2).image
    assert not torch.equal(const, none)
    assert torch.equal(r1, r1b)
    assert not torch.equal(r1, r2) and not torch.equal(r1, const)
    with torch.no_grad():
        for name, p in g.named_parameters():
            if name.endswith("noise_strength"):
                p.zero_()
    torch.testing.assert_close(g.synthesize(ws, noise_mode="const").image,
                               g.synthesize(ws, noise_mode="none").image, atol=0, rtol=0)


# ---- mapping and truncation -------------------------------------------------------------------------------
@pytest.mark.parametrize("psi, cutoff", [(0.7, None), (0.5, 3), (1.0, 2)])
def test_truncation_formula(psi, cutoff):
    g = tiny(c_dim=4)
    z, c = torch.randn(3, 12), torch.eye(4)[:3]
    raw = g.mapping(z, c)
    got = g.mapping(z, c, truncation_psi=psi, truncation_cutoff=cutoff)
    w_avg = g.w_avg.reshape(1, 1, -1)
    rows = g.num_ws if cutoff is None else cutoff
    want = raw.clone()
    want[:, :rows] = w_avg + psi * (raw[:, :rows] - w_avg)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
    assert torch.equal(raw[:, 0], raw[:, -1])  # mapping broadcasts one w to every row


def test_conditional_mapping_uses_the_label_and_requires_it():
    g = tiny(c_dim=4)
    z = torch.randn(1, 12)
    a = g.mapping(z, torch.tensor([[1.0, 0, 0, 0]]))
    b = g.mapping(z, torch.tensor([[0, 1.0, 0, 0]]))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="conditional"):
        g.mapping(z)


def test_update_emas_moves_w_avg_by_beta():
    g = tiny()
    z = torch.randn(5, 12)
    before = g.w_avg.clone()
    w = g.mapping(z)[:, 0]
    g.mapping(z, update_emas=True)
    beta = 0.998
    torch.testing.assert_close(g.w_avg, beta * before + (1 - beta) * w.mean(dim=0), atol=1e-6, rtol=1e-6)
    g.mapping(z)
    torch.testing.assert_close(g.w_avg, beta * before + (1 - beta) * w.mean(dim=0), atol=1e-6, rtol=1e-6)


# ---- construction, config, state dict ----------------------------------------------------------------------
def test_state_dict_keys_are_nvlabs_names():
    keys = set(tiny(architecture="resnet", resolution=8, c_dim=2).state_dict())
    for key in ["mapping.embed.weight", "mapping.fc0.weight", "mapping.fc1.bias", "mapping.w_avg",
                "synthesis.b4.const", "synthesis.b4.resample_filter", "synthesis.b4.conv1.affine.weight",
                "synthesis.b4.conv1.noise_const", "synthesis.b4.conv1.noise_strength",
                "synthesis.b8.conv0.weight", "synthesis.b8.conv0.resample_filter", "synthesis.b8.skip.weight",
                "synthesis.b8.skip.resample_filter", "synthesis.b8.torgb.affine.bias", "synthesis.b8.torgb.weight"]:
        assert key in keys, key
    assert "synthesis.b4.torgb.weight" not in keys  # resnet: only the last block has a torgb


def test_config_round_trips_through_json():
    g = tiny(architecture="orig", width=8, c_dim=3, channels={4: 8, 8: 6, 16: 5})
    config = json.loads(json.dumps(g.config()))
    rebuilt = StyleGAN2Generator(**config)
    rebuilt.load_state_dict(g.state_dict())
    z, c = torch.randn(1, 12), torch.eye(3)[:1]
    torch.testing.assert_close(rebuilt(z, c), g(z, c), atol=0, rtol=0)
    assert rebuilt.layers == g.layers
    assert [layer.channels for layer in g.layers if layer.kind == "conv"] == [8, 6, 6, 5, 5]


def test_ada_style_synthesis_kwargs_build_the_same_network():
    common = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3)
    synthesis = dict(channel_base=32, channel_max=4, architecture="resnet", conv_clamp=None, num_fp16_res=2)
    a = StyleGAN2Generator(**common, **synthesis)
    b = StyleGAN2Generator(**common, synthesis_kwargs=synthesis)
    assert a.config() == b.config()
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}


def test_constructor_errors():
    common = dict(z_dim=8, c_dim=0, w_dim=8, img_channels=3, channel_base=32, channel_max=4)
    with pytest.raises(TypeError, match="frobnicate"):
        StyleGAN2Generator(img_resolution=8, frobnicate=1, **common)
    with pytest.raises(ValueError, match="architecture"):
        StyleGAN2Generator(img_resolution=8, architecture="fancy", **common)
    with pytest.raises(ValueError, match="power of two"):
        StyleGAN2Generator(img_resolution=12, **common)
    with pytest.raises(ValueError, match="img_width"):
        StyleGAN2Generator(img_resolution=8, img_width=3, **common)
    with pytest.raises(ValueError, match="channels"):
        StyleGAN2Generator(img_resolution=8, channels={4: 4}, **common)


# ---- execution modes ----------------------------------------------------------------------------------------
def test_fused_and_non_fused_modconv_agree_for_batches(grad_mode):
    g = tiny(architecture="resnet")
    ws = torch.randn(3, g.num_ws, g.w_dim)
    g.fused_modconv = True
    fused = g.synthesize(ws).image
    g.fused_modconv = False
    plain = g.synthesize(ws).image
    torch.testing.assert_close(fused, plain, atol=1e-5, rtol=1e-5)
    one = g.synthesize(ws[1:2]).image
    torch.testing.assert_close(one, plain[1:2], atol=1e-5, rtol=1e-5)


def test_gradients_to_the_latents_go_through_the_shared_weight_and_match_per_sample_weights(monkeypatch):
    g = tiny(architecture="skip")
    g.requires_grad_(False)
    ws = torch.randn(1, g.num_ws, g.w_dim)
    chosen = []
    use_fused = g._use_fused
    monkeypatch.setattr(g, "_use_fused", lambda latents: chosen.append(use_fused(latents)) or chosen[-1])
    with torch.no_grad():
        g.synthesize(ws)
    assert set(chosen) == {True}  # one sample, nothing to differentiate: per-sample weights
    chosen.clear()

    def image_and_gradient():
        latents = ws.clone().requires_grad_(True)
        image = g.synthesize(latents).image
        (image * torch.linspace(-1, 1, image.numel()).view_as(image)).sum().backward()
        return image.detach(), latents.grad

    image, gradient = image_and_gradient()
    assert set(chosen) == {False}  # gradients reach the latents: the shared weight
    g.fused_modconv = True
    fused_image, fused_gradient = image_and_gradient()
    torch.testing.assert_close(image, fused_image, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gradient, fused_gradient, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_frozen_weights_kept_between_steps_give_the_gradients_of_live_ones_and_follow_a_change(dtype):
    g = tiny(architecture="skip")
    ws = torch.randn(1, g.num_ws, g.w_dim)

    def gradient(frozen):
        g.requires_grad_(not frozen)
        latents = ws.clone().requires_grad_(True)
        image = g.synthesize(latents, compute_dtype=dtype).image.float()
        image.square().sum().backward()
        return latents.grad

    tolerance = dict(atol=1e-6, rtol=1e-5) if dtype == torch.float32 else dict(atol=0, rtol=0)
    torch.testing.assert_close(gradient(frozen=True), gradient(frozen=False), **tolerance)
    with torch.no_grad():
        g.synthesis.b8.conv1.weight.mul_(-1.5)  # a change in place: what was kept is stale
    torch.testing.assert_close(gradient(frozen=True), gradient(frozen=False), **tolerance)


@pytest.mark.parametrize("architecture", ["skip", "resnet"])
def test_inference_path_equals_training_path(architecture):
    g = tiny(architecture=architecture, width=32, conv_clamp=0.5)
    ws = torch.randn(1, g.num_ws, g.w_dim)
    names = [layer.name for layer in g.layers]
    reference = g.synthesize(ws, taps=names)
    for memory_format in (torch.contiguous_format, torch.channels_last):
        g.memory_format = memory_format
        with torch.no_grad():
            fast = g.synthesize(ws, taps=names)
        for name in names:
            torch.testing.assert_close(fast.taps[name], reference.taps[name], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(fast.image, reference.image, atol=1e-5, rtol=1e-5)


def test_inference_cache_follows_weight_changes():
    g = tiny()
    ws = torch.randn(1, g.num_ws, g.w_dim)
    with torch.no_grad():
        before = g.synthesize(ws).image
        g.synthesis.b8.conv1.weight.mul_(2.0).add_(0.1)
        after = g.synthesize(ws).image
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, g.synthesize(ws).image, atol=1e-5, rtol=1e-5)


def test_bfloat16_compute_is_close_to_float32():
    g = tiny(architecture="resnet")
    ws = torch.randn(1, g.num_ws, g.w_dim)
    with torch.no_grad():
        reference = g.synthesize(ws).image
        out = g.synthesize(ws, keep_states=[3], compute_dtype=torch.bfloat16)
    assert out.image.dtype == torch.float32
    assert out.states[3]["x"].dtype == torch.bfloat16
    assert (out.image - reference).abs().max() < 0.05 * reference.abs().max()


def test_bf16_autocast_channels_last_and_gradients():
    g = tiny(architecture="skip", width=8)
    z = torch.randn(4, 12)
    reference = g(z).detach()
    g.train()
    g.to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        image = g.synthesize(g.mapping(z, update_emas=True)).image
    assert image.dtype == torch.float32 and image.shape == reference.shape
    assert (image - reference).abs().max() < 0.05 * reference.abs().max()
    image.square().mean().backward()
    for name, p in g.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert g.synthesis.b16.conv0.weight.grad.abs().sum() > 0
    assert g.mapping_network.fc0.weight.grad.abs().sum() > 0
