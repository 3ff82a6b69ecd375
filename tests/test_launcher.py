"""The launcher's start-up helpers."""

import gc
import subprocess
import sys

import pytest

from ganinterface.launcher import collector_paused


def test_collector_paused_during_imports_and_restored_after():
    assert gc.isenabled()
    frozen_before = gc.get_freeze_count()
    with collector_paused():
        assert not gc.isenabled()
        imported = [[] for _ in range(100)]  # lists: objects the collector tracks
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen_before + len(imported)  # never traversed again


def test_collector_restored_when_the_import_fails():
    with pytest.raises(ImportError), collector_paused():
        raise ImportError("no such module")
    assert gc.isenabled()


def test_collector_left_off_when_the_caller_had_it_off():
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


_HUGE_PAGES_SCRIPT = """
import sys
from ganinterface.launcher import use_huge_pages
if sys.argv[1] == "asked":
    use_huge_pages()
import torch
block = torch.empty(32 * 2**20).fill_(1.0)  # 128 MB, a 1024 px layer's activations
with open("/proc/self/smaps_rollup") as rollup:
    print(next(int(line.split()[1]) for line in rollup if line.startswith("AnonHugePages")))
"""


def _transparent_huge_pages() -> str:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as setting:
            return setting.read()
    except OSError:
        return "[never]"


@pytest.mark.slow  # two processes that import torch
@pytest.mark.skipif("[never]" in _transparent_huge_pages(), reason="this system offers no huge pages")
def test_the_launcher_puts_large_tensors_on_huge_pages(monkeypatch):
    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)

    def huge_kilobytes(mode: str) -> int:
        run = subprocess.run([sys.executable, "-c", _HUGE_PAGES_SCRIPT, mode], capture_output=True,
                             text=True, check=True)
        return int(run.stdout)

    if "[always]" not in _transparent_huge_pages():  # with "always" every large block gets them
        assert huge_kilobytes("plain") < 16 * 1024
    assert huge_kilobytes("asked") >= 64 * 1024  # most of the 128 MB
