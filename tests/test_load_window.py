"""The window's own render thread (RenderBridge, signals queued to the GUI thread) under a shorter
stream of random changes and model reloads than test_load_render_worker runs without Qt."""

from __future__ import annotations

import pytest

import random

import numpy as np

from ganinterface.engine import commands as cmd
from ganinterface.engine.renderer import Renderer
from test_load_render_worker import WAIT, SceneWalk, exploding_kind  # noqa: F401 (a fixture)
from ui_support import open_window, tiny_generator

CHANGES = 100
RELOAD_EVERY = 50


def _on_a_thread_of_its_own(function):
    """``function()`` on a new thread, with torch's thread count the window's workers have (the sums of
    a render depend on it)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as thread:  # a new thread; its exception is raised here
        return thread.submit(function).result()


@pytest.mark.slow  # hundreds of changes; the worker alone is checked quickly elsewhere
def test_random_changes_through_the_bridge_end_on_the_last_scene(qtbot, tmp_path,
                                                                 exploding_kind):  # noqa: F811
    arrived = []

    def all_arrived() -> bool:
        return bool(arrived) and arrived[-1] == executor.latest_id

    with open_window(qtbot, tmp_path, force_sync=False) as window:
        window.bridge.rendered.connect(lambda _request, outcome: arrived.append(outcome.request_id))
        executor = window.bridge.executor
        walk, rng = SceneWalk(7, tiny_generator()), random.Random(7)
        for i in range(1, CHANGES + 1):
            scene, _taps = walk.step()
            window.stack.push(cmd.Command("random change", lambda _old, new=scene: new))
            if i % RELOAD_EVERY == 0:
                window.load_model_async(None)
            if rng.random() < 0.3:  # let this one arrive; otherwise the next change comes at once
                qtbot.waitUntil(all_arrived, timeout=WAIT * 1000)
        window.stack.push(cmd.set_fields("Seed", seed=12345))  # a last change that renders
        qtbot.waitUntil(lambda: not window.loader_task.busy(), timeout=WAIT * 1000)
        qtbot.waitUntil(all_arrived, timeout=WAIT * 1000)
        layer = window.features_panel.current_layer()
        taps = (layer,) if layer else ()
        expected = _on_a_thread_of_its_own(  # the GUI thread's torch runs on one core, the window's
            lambda: Renderer(tiny_generator(), "cpu").render(window.displayed_scene(), taps))
        assert expected.error is None
        assert np.array_equal(window.last_result.raw, expected.raw)
        assert np.array_equal(window.last_result.ws, expected.ws)
        assert "Render failed" not in window.controls.render_label.text()


def test_the_gui_thread_runs_torch_on_one_core_while_its_renders_run_on_workers(qtbot, tmp_path):
    import threading

    import torch

    before = torch.get_num_threads()
    if before == 1:
        pytest.skip("torch runs on one thread here")
    on_a_worker = []
    with open_window(qtbot, tmp_path, force_sync=False):
        assert torch.get_num_threads() == 1
        worker = threading.Thread(target=lambda: on_a_worker.append(torch.get_num_threads()))
        worker.start()
        worker.join()
    assert on_a_worker == [before]
    assert torch.get_num_threads() == before  # as it was once the window has shut down
