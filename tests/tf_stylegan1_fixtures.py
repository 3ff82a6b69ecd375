"""TensorFlow StyleGAN (v1) pickles written in test code, with the variable names and shapes of
NVlabs' ``training/networks_stylegan.py`` (state version 3), and a reference forward pass that
reads those variables directly, written from the original's definitions.

The reference is deliberately naive (explicit tap loops for every convolution, blur and transposed
convolution, index arithmetic for nearest up-sampling) so that it shares nothing with
``models/stylegan1.py`` but the formulas.
"""

from __future__ import annotations

import dataclasses
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tests.tf_fixtures import normal, tf_network, tf_pickle_bytes, write_tf_pickle

VERSION = 3  # tflib Network state version of the StyleGAN (v1) release


@dataclasses.dataclass(frozen=True)
class TFStyleGAN1Spec:
    """A small G_style, by default 32x32, 2 mapping layers, conditional when label_size > 0."""

    resolution: int = 32
    const_width: int = 4  # pixels; 4 * img_width / resolution for a non-square network
    num_channels: int = 3
    latent_size: int = 12
    dlatent_size: int = 10
    label_size: int = 0
    mapping_layers: int = 2
    mapping_fmaps: int = 14
    fmap_base: int = 128  # channels of the block at resolution 2**r: min(fmap_base / 2**(r-1), fmap_max)
    fmap_max: int = 16
    fused_scale: Any = "auto"
    lod: float = 0.0
    truncation_cutoff: int | None = None  # None: not stored (the original default, 8, applies)
    extra_kwargs: tuple[tuple[str, Any], ...] = ()

    @property
    def resolution_log2(self) -> int:
        return int(np.log2(self.resolution))

    def nf(self, stage: int) -> int:
        return min(int(self.fmap_base / 2.0**stage), self.fmap_max)

    def static_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(
            num_channels=self.num_channels, resolution=self.resolution, label_size=self.label_size,
            latent_size=self.latent_size, dlatent_size=self.dlatent_size,
            mapping_layers=self.mapping_layers, mapping_fmaps=self.mapping_fmaps,
            fmap_base=self.fmap_base, fmap_max=self.fmap_max, structure="linear")
        if self.fused_scale != "auto":
            kwargs["fused_scale"] = self.fused_scale
        if self.truncation_cutoff is not None:
            kwargs["truncation_cutoff"] = self.truncation_cutoff
        kwargs.update(dict(self.extra_kwargs))
        return kwargs


def mapping_variables(spec: TFStyleGAN1Spec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    variables: dict[str, np.ndarray] = {}
    width = spec.latent_size
    if spec.label_size:
        variables["LabelConcat/weight"] = normal(rng, spec.label_size, spec.latent_size)
        width += spec.latent_size
    for i in range(spec.mapping_layers):
        out = spec.dlatent_size if i == spec.mapping_layers - 1 else spec.mapping_fmaps
        variables[f"Dense{i}/weight"] = normal(rng, width, out, scale=100.0)  # stored / lrmul
        variables[f"Dense{i}/bias"] = normal(rng, out, scale=30.0)
        width = out
    return variables


def _epilogue(rng: np.random.Generator, spec: TFStyleGAN1Spec, fmaps: int) -> dict[str, np.ndarray]:
    return {"Noise/weight": normal(rng, fmaps, scale=0.5), "bias": normal(rng, fmaps, scale=0.3),
            "StyleMod/weight": normal(rng, spec.dlatent_size, 2 * fmaps),
            "StyleMod/bias": normal(rng, 2 * fmaps, scale=0.3)}


def synthesis_variables(spec: TFStyleGAN1Spec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    variables: dict[str, np.ndarray] = {"lod": np.array(spec.lod, np.float32)}
    for layer_idx in range(spec.resolution_log2 * 2 - 2):
        side = 2 ** (layer_idx // 2 + 2)
        variables[f"noise{layer_idx}"] = normal(rng, 1, 1, side, side * spec.const_width // 4)

    def add(scope: str, layer: dict[str, np.ndarray]) -> None:
        variables.update({f"{scope}/{key}": value for key, value in layer.items()})

    nf1 = spec.nf(1)
    add("4x4/Const", {"const": normal(rng, 1, nf1, 4, spec.const_width), **_epilogue(rng, spec, nf1)})
    add("4x4/Conv", {"weight": normal(rng, 3, 3, nf1, nf1), **_epilogue(rng, spec, nf1)})
    for res in range(3, spec.resolution_log2 + 1):
        scope, fmaps_in, fmaps = f"{2**res}x{2**res}", spec.nf(res - 2), spec.nf(res - 1)
        add(f"{scope}/Conv0_up", {"weight": normal(rng, 3, 3, fmaps_in, fmaps), **_epilogue(rng, spec, fmaps)})
        add(f"{scope}/Conv1", {"weight": normal(rng, 3, 3, fmaps, fmaps), **_epilogue(rng, spec, fmaps)})
    for res in range(2, spec.resolution_log2 + 1):  # progressive growing left a ToRGB per resolution
        lod = spec.resolution_log2 - res
        add(f"ToRGB_lod{lod}", {"weight": normal(rng, 1, 1, spec.nf(res - 1), spec.num_channels),
                                "bias": normal(rng, spec.num_channels, scale=0.3)})
    return variables


def stylegan1_generator(spec: TFStyleGAN1Spec, seed: int, name: str = "Gs",
                        synthesis_extra: dict[str, np.ndarray] | None = None):
    """One G_style network with G_mapping and G_synthesis components."""
    rng = np.random.default_rng(seed)
    kwargs = spec.static_kwargs()
    num_ws = spec.resolution_log2 * 2 - 2
    mapping = tf_network("G_mapping", "G_mapping", {**kwargs, "dlatent_broadcast": num_ws},
                         mapping_variables(spec, rng), version=VERSION)
    synthesis = tf_network("G_synthesis", "G_synthesis", kwargs,
                           {**synthesis_variables(spec, rng), **(synthesis_extra or {})}, version=VERSION)
    own = {"lod": np.array(spec.lod, np.float32), "dlatent_avg": normal(rng, spec.dlatent_size)}
    return tf_network(name, "G_style", kwargs, own, components=dict(mapping=mapping, synthesis=synthesis),
                      version=VERSION)


def stylegan1_tf_networks(spec: TFStyleGAN1Spec, seed: int = 0, **extra) -> tuple:
    """(G, D, Gs) of a training snapshot; G and Gs hold different weights."""
    discriminator = tf_network("D", "D_basic", {"resolution": spec.resolution},
                               {"4x4/Dense1/weight": np.ones((4, 1), np.float32)}, version=VERSION)
    return (stylegan1_generator(spec, seed + 1, "G"), discriminator, stylegan1_generator(spec, seed, "Gs", **extra))


def write_stylegan1_tf(path: Path, spec: TFStyleGAN1Spec = TFStyleGAN1Spec(), seed: int = 0, **extra) -> Path:
    return write_tf_pickle(path, stylegan1_tf_networks(spec, seed, **extra))


def gs_variables(gs) -> dict[str, np.ndarray]:
    """Every variable of a fixture G_style, components prefixed ("mapping/Dense0/weight")."""
    state = gs.state
    found = dict(state["variables"])
    for key, component in state["components"].items():
        found.update({f"{key}/{name}": value for name, value in component.state["variables"]})
    return found


# ---- the reference forward pass ------------------------------------------------------------------
def _lrelu(x):
    return torch.where(x >= 0, x, 0.2 * x)


def _t(array) -> torch.Tensor:
    return torch.from_numpy(np.asarray(array, dtype=np.float64))


def _dense(x, weight, bias, gain, lrmul=1.0):
    """TF ``dense`` + ``apply_bias``: weight [in, out] scaled by gain / sqrt(in) * lrmul."""
    return x @ (_t(weight) * (gain / math.sqrt(weight.shape[0]) * lrmul)) + _t(bias) * lrmul


def conv_same(x, weight):
    """TF conv2d "SAME" (cross-correlation), weight [kh, kw, in, out], one tap at a time."""
    kh, kw = weight.shape[:2]
    h, w = x.shape[2:]
    padded = torch.nn.functional.pad(x, [kw // 2, kw // 2, kh // 2, kh // 2])
    out = 0
    for dy in range(kh):
        for dx in range(kw):
            out = out + torch.einsum("nihw,io->nohw", padded[:, :, dy:dy + h, dx:dx + w], _t(weight[dy, dx]))
    return out


def nearest_up(x):
    h, w = x.shape[2:]
    return x[:, :, torch.arange(2 * h) // 2][:, :, :, torch.arange(2 * w) // 2]


def fused_up_conv(x, weight):
    """TF conv2d_transpose, stride 2, "SAME", of the 4-shift sum of the padded kernel:
    output pixel 2*i + k - 1 receives x[i] times tap k."""
    padded = np.pad(weight, [[1, 1], [1, 1], [0, 0], [0, 0]])
    kernel = padded[1:, 1:] + padded[:-1, 1:] + padded[1:, :-1] + padded[:-1, :-1]  # [4, 4, in, out]
    n, _, h, w = x.shape
    out = torch.zeros(n, weight.shape[3], 2 * h + 2, 2 * w + 2, dtype=x.dtype)
    for ky in range(4):
        for kx in range(4):
            out[:, :, ky:ky + 2 * h:2, kx:kx + 2 * w:2] += torch.einsum("nihw,io->nohw", x, _t(kernel[ky, kx]))
    return out[:, :, 1:2 * h + 1, 1:2 * w + 1]


def blur_121(x):
    taps = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    h, w = x.shape[2:]
    padded = torch.nn.functional.pad(x, [1, 1, 1, 1])
    return sum(taps[dy, dx] * padded[:, :, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3))


def reference_mapping(v: dict[str, np.ndarray], spec: TFStyleGAN1Spec, z, c=None, psi=1.0, cutoff=8):
    x = _t(z)
    if spec.label_size:
        x = torch.cat([x, _t(c) @ _t(v["mapping/LabelConcat/weight"])], dim=1)
    x = x / torch.sqrt((x * x).mean(dim=1, keepdim=True) + 1e-8)
    for i in range(spec.mapping_layers):
        x = _lrelu(_dense(x, v[f"mapping/Dense{i}/weight"], v[f"mapping/Dense{i}/bias"], math.sqrt(2), 0.01))
    num_ws = spec.resolution_log2 * 2 - 2
    ws = x[:, None].repeat(1, num_ws, 1)
    rows = torch.arange(num_ws)[None, :, None] < cutoff
    avg = _t(v["dlatent_avg"])
    return torch.where(rows, avg + (ws - avg) * psi, ws)


def reference_synthesis(v: dict[str, np.ndarray], spec: TFStyleGAN1Spec, ws, fused_from: int = 128):
    """G_synthesis at lod 0 with the stored noise (randomize_noise=False)."""
    ws = _t(ws) if isinstance(ws, np.ndarray) else ws.to(torch.float64)

    def epilogue(x, scope, layer_idx):
        x = x + _t(v[f"synthesis/noise{layer_idx}"]) * _t(v[f"synthesis/{scope}/Noise/weight"]).reshape(1, -1, 1, 1)
        x = _lrelu(x + _t(v[f"synthesis/{scope}/bias"]).reshape(1, -1, 1, 1))
        x = x - x.mean(dim=[2, 3], keepdim=True)
        x = x / torch.sqrt((x * x).mean(dim=[2, 3], keepdim=True) + 1e-8)
        style = _dense(ws[:, layer_idx], v[f"synthesis/{scope}/StyleMod/weight"],
                       v[f"synthesis/{scope}/StyleMod/bias"], 1.0)
        style = style.reshape(-1, 2, x.shape[1], 1, 1)
        return x * (style[:, 0] + 1) + style[:, 1]

    def he(weight):  # the equalised-lr scale of a conv weight [kh, kw, in, out]
        return weight * (math.sqrt(2) / math.sqrt(weight.shape[0] * weight.shape[1] * weight.shape[2]))

    x = _t(v["synthesis/4x4/Const/const"]).repeat(ws.shape[0], 1, 1, 1)
    x = epilogue(x, "4x4/Const", 0)
    x = epilogue(conv_same(x, he(v["synthesis/4x4/Conv/weight"])), "4x4/Conv", 1)
    for res in range(3, spec.resolution_log2 + 1):
        scope = f"{2**res}x{2**res}"
        weight = he(v[f"synthesis/{scope}/Conv0_up/weight"])
        fused = spec.fused_scale is True or (spec.fused_scale == "auto" and min(x.shape[2:]) * 2 >= fused_from)
        x = fused_up_conv(x, weight) if fused else conv_same(nearest_up(x), weight)
        x = epilogue(blur_121(x), f"{scope}/Conv0_up", res * 2 - 4)
        x = epilogue(conv_same(x, he(v[f"synthesis/{scope}/Conv1/weight"])), f"{scope}/Conv1", res * 2 - 3)
    rgb = v["synthesis/ToRGB_lod0/weight"]
    return conv_same(x, rgb / math.sqrt(rgb.shape[2])) + _t(v["synthesis/ToRGB_lod0/bias"]).reshape(1, -1, 1, 1)


def load_fixture(spec: TFStyleGAN1Spec, seed: int = 0):
    """(our generator, the Gs variables) of a fixture read back through the TF pickle reader."""
    from ganinterface.models import nvlabs_pkl, tf_pickle

    networks = stylegan1_tf_networks(spec, seed)
    data = nvlabs_pkl.unpickle_checkpoint(io.BytesIO(tf_pickle_bytes(networks)), "fixture.pkl",
                                          tf_pickle.ALLOWED_GLOBALS)
    return tf_pickle.load_tf_model(data, "fixture.pkl").generator, gs_variables(networks[2])
