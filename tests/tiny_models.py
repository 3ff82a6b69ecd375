"""Tiny real generators for engine tests: milliseconds per render, every code path of a big one."""

from __future__ import annotations

import torch

from ganinterface.models.stylegan2 import StyleGAN2Generator


def tiny_stylegan2(c_dim: int = 0, architecture: str = "skip", seed: int = 0) -> StyleGAN2Generator:
    """16x8 (non-square) StyleGAN2 with 3 blocks; noise and w_avg non-zero so they matter."""
    torch.manual_seed(seed)
    generator = StyleGAN2Generator(
        z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=16, img_channels=3, img_width=8,
        mapping_kwargs={"num_layers": 2}, channels={4: 8, 8: 6, 16: 4}, architecture=architecture)
    with torch.no_grad():
        for name, parameter in generator.named_parameters():
            if name.endswith("noise_strength"):
                parameter.fill_(0.3)
            elif name.endswith(".bias"):
                parameter.normal_(0.0, 0.2)
        generator.mapping_network.w_avg.normal_()
    return generator.eval()


def tiny_stylegan3(seed: int = 0):
    """16x16 StyleGAN3-T with 5 synthesis layers (36x36 internal maps)."""
    from ganinterface.models.stylegan3 import StyleGAN3Generator

    torch.manual_seed(seed)
    return StyleGAN3Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
                              channel_base=128, channel_max=8, num_layers=4,
                              mapping_kwargs={"num_layers": 2}).eval()


def tiny_stylegan1(c_dim: int = 0, seed: int = 0, width: int = 8):
    """16 x ``width`` StyleGAN (v1) with 3 blocks; noise, biases and w_avg non-zero so they matter."""
    from ganinterface.models.stylegan1 import StyleGAN1Generator

    torch.manual_seed(seed)
    generator = StyleGAN1Generator(
        z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=16, img_channels=3, img_width=width,
        mapping_kwargs={"num_layers": 2, "layer_features": 8}, channels={4: 8, 8: 6, 16: 4})
    with torch.no_grad():
        for name, parameter in generator.named_parameters():
            if name.endswith("noise_strength") or name.endswith(".bias"):
                parameter.normal_(0.0, 0.3)
        generator.mapping_network.w_avg.normal_()
    return generator.eval()
