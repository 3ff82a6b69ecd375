"""Choosing where the generator runs: CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

import torch

DEVICE_KINDS = ("cpu", "cuda", "mps")


class DeviceError(ValueError):
    """The requested device does not exist on this machine; the message says which ones do."""


def available_devices() -> list[str]:
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.insert(0, "cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.insert(-1, "mps")
    return devices


def pick_device(preferred: str | None = None) -> torch.device:
    """The best device available, or ``preferred`` ("cpu", "cuda", "cuda:1", "mps") if it exists."""
    available = available_devices()
    if preferred is None or preferred == "auto":
        return torch.device(available[0])
    kind, _, index = preferred.partition(":")
    if kind not in DEVICE_KINDS or (index and (kind != "cuda" or not index.isdigit())):
        raise DeviceError(f"unknown device {preferred!r}; use one of: {', '.join(DEVICE_KINDS)} "
                          "(or cuda:N)")
    if kind not in available:
        raise DeviceError(f"device {preferred!r} is not available on this machine; "
                          f"available: {', '.join(available)}")
    if index and int(index) >= torch.cuda.device_count():
        raise DeviceError(f"device {preferred!r} does not exist; this machine has "
                          f"{torch.cuda.device_count()} CUDA device(s)")
    return torch.device(preferred)
