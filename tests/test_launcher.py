"""The launcher's start-up helpers."""

import gc

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
