"""How responsive is the window while a slider is dragged as fast as events allow?

Fires 300 truncation-slider changes at the real window (real render thread, offscreen), one per
event-loop turn, and measures:
- the longest time the GUI thread was blocked (gap between ticks of a 0 ms heartbeat timer; goal
  under 50 ms), and the longest single slider handler;
- how many renders were requested, run and shown (the rest were superseded before they ran, or
  finished stale while a newer one waited; a stale one is still shown if the picture had not
  changed for 0.15 s, so it follows the slider);
- that the final image equals a direct render of the final scene with a fresh Renderer.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_ui.py [CHECKPOINT] [--changes 300] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?", default=None, help="default: the built-in model")
    parser.add_argument("--changes", type=int, default=300)
    parser.add_argument("--json", default=None, help="also write the figures here")
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="override the GIL switch interval the app sets (seconds)")
    args = parser.parse_args(argv)

    import numpy as np
    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from ganinterface.engine.renderer import Renderer
    from ganinterface.ui.main_window import MainWindow

    from ganinterface.ui.app import configure_runtime

    configure_runtime()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    settings = QSettings(os.devnull, QSettings.Format.IniFormat)
    window = MainWindow(settings=settings)
    window.resize(1280, 800)
    window.show()
    window.load_model_async(args.checkpoint)
    deadline = time.monotonic() + 120
    while (window.model is None or window.last_result is None) and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    if window.model is None:
        print("model did not load", file=sys.stderr)
        return 1
    window.bridge.executor.wait_idle(30)
    app.processEvents()
    stats_before = dataclass_copy(window.bridge.executor.stats)

    import gc
    import threading

    gc_pauses: list[float] = []  # Python's cyclic garbage collections on the GUI thread
    gc_started: dict[str, float] = {}

    def gc_timer(phase: str, info: dict) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        if phase == "start":
            gc_started["t"] = time.perf_counter()
        elif "t" in gc_started:
            gc_pauses.append(time.perf_counter() - gc_started.pop("t"))

    gc.callbacks.append(gc_timer)
    values = [round(0.3 + 0.7 * (i % 71) / 70, 4) for i in range(args.changes)]
    gaps: list[float] = []
    cpu_gaps: list[float] = []  # GUI-thread CPU time spent inside each gap
    handler_times: list[float] = []
    state = {"last_tick": time.perf_counter(), "last_cpu": time.thread_time(), "fired": 0}

    def heartbeat() -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        gaps.append(now - state["last_tick"])
        cpu_gaps.append(cpu - state["last_cpu"])
        state["last_tick"], state["last_cpu"] = now, cpu

    def fire() -> None:
        if state["fired"] >= len(values):
            fire_timer.stop()
            return
        started = time.perf_counter()
        window.latent_panel.psi.setValue(values[state["fired"]])
        handler_times.append(time.perf_counter() - started)
        state["fired"] += 1

    beat = QTimer()
    beat.setInterval(1)  # a 0 ms timer would spin the GUI thread and starve the render thread
    beat.timeout.connect(heartbeat)
    fire_timer = QTimer()
    fire_timer.setInterval(0)
    fire_timer.timeout.connect(fire)
    loop = QEventLoop()
    timings = {"started": time.perf_counter(), "finished": 0.0}

    def check_done() -> None:
        if state["fired"] >= len(values) and window.bridge.executor.is_idle():
            if not timings["finished"]:
                timings["finished"] = time.perf_counter()
            elif time.perf_counter() - timings["finished"] > 0.5:  # let the last result arrive
                loop.quit()

    done_timer = QTimer()
    done_timer.setInterval(10)
    done_timer.timeout.connect(check_done)
    state["last_tick"], state["last_cpu"] = time.perf_counter(), time.thread_time()
    beat.start()
    fire_timer.start()
    done_timer.start()
    loop.exec()
    beat.stop()
    done_timer.stop()
    fired_seconds = timings["finished"] - timings["started"]

    gc.callbacks.remove(gc_timer)
    final_scene = window.stack.scene
    direct = Renderer(window.model.renderer.generator).render(final_scene)
    identical = bool(window.last_result is not None and direct.error is None
                     and np.array_equal(window.last_result.image, direct.image))
    stats = window.bridge.executor.stats
    figures = {
        "model": window.model.shape.name,
        "image": f"{window.model.shape.height}x{window.model.shape.width}",
        "changes": len(values),
        "seconds": round(fired_seconds, 3),
        "longest_ui_block_ms": round(max(gaps) * 1000, 1),
        "p99_ui_block_ms": round(float(np.percentile(gaps, 99)) * 1000, 1),
        # the GUI thread's own CPU time in its longest stretch: the part our code is to blame for
        # (the rest of a wall-clock gap is waiting for a core or the GIL on a busy machine)
        "longest_ui_cpu_stretch_ms": round(max(cpu_gaps) * 1000, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpu_cores": os.cpu_count(),
        "gil_switch_interval_ms": sys.getswitchinterval() * 1000,
        "gc_collections_on_gui_thread": len(gc_pauses),
        "longest_gc_pause_ms": round(max(gc_pauses, default=0.0) * 1000, 1),
        "longest_handler_ms": round(max(handler_times) * 1000, 1),
        "median_handler_ms": round(float(np.median(handler_times)) * 1000, 2),
        "renders_requested": stats.submitted - stats_before.submitted,
        "renders_run": stats.completed - stats_before.completed,
        "renders_delivered": stats.delivered - stats_before.delivered,
        "stale_shown_during_drag": stats.stale_delivered - stats_before.stale_delivered,
        "one_render_ms": round(direct.seconds * 1000, 1),
        "final_image_equals_direct_render": identical,
        "goal_ui_block_under_50ms": max(gaps) < 0.050,
    }
    for key, value in figures.items():
        print(f"{key:34s} {value}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=1)
    window.stack.mark_clean()
    window.close()
    return 0 if identical else 1


def dataclass_copy(stats):
    import dataclasses

    return dataclasses.replace(stats)


if __name__ == "__main__":
    sys.exit(main())
