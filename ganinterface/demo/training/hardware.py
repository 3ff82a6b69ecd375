"""Where a run trains, in words for the model card."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from ganinterface.demo.training.settings import RunOptions


def describe_hardware(device: torch.device, options: RunOptions) -> str:
    if device.type != "cpu":
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"Apple GPU ({device})"
        return f"{name} with {options.data_workers} rendering process(es) on {_cpu_name()}"
    return (f"{_cpu_name()} ({os.cpu_count()} cores, shared with other jobs), {options.workers} "
            f"worker process(es) x {options.threads} torch thread(s), no GPU")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or f"{platform.machine()} CPU"
