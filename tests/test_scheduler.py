"""LatestWinsExecutor: newest request wins, stale results dropped, errors are values."""

from __future__ import annotations

import ctypes
import random
import subprocess
import sys
import threading
import time

import pytest

from ganinterface.engine.scheduler import LatestWinsExecutor, Outcome


class Recorder:
    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []
        self.threads: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)
            self.threads.append(threading.current_thread().name)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def test_force_sync_runs_on_caller_thread_and_delivers_every_request(recorder):
    executor = LatestWinsExecutor(lambda x: x * 2, recorder, force_sync=True)
    ids = [executor.submit(i) for i in range(3)]
    assert ids == [1, 2, 3]
    assert [o.value for o in recorder.outcomes] == [0, 2, 4]
    assert recorder.threads == [threading.current_thread().name] * 3
    executor.shutdown()


def test_waiting_request_is_superseded_and_never_runs(recorder):
    release = threading.Event()
    started = threading.Event()
    ran: list[int] = []

    def work(x: int) -> int:
        ran.append(x)
        if x == 0:
            started.set()
            release.wait(5)
        return x

    executor = LatestWinsExecutor(work, recorder, name="test-worker")
    try:
        executor.submit(0)
        assert started.wait(5)
        for x in range(1, 50):  # while 0 runs, 49 requests arrive; only the last may run
            executor.submit(x)
        release.set()
        assert executor.wait_idle(5)
    finally:
        executor.shutdown()
    assert ran == [0, 49]
    # 0 finished after newer requests arrived: stale, dropped.  Only 49 is delivered.
    assert [o.value for o in recorder.outcomes] == [49]
    assert recorder.outcomes[0].request_id == 50
    assert recorder.threads == ["test-worker"]
    assert executor.stats.superseded == 48
    assert executor.stats.stale == 1
    assert executor.stats.delivered == 1


def test_error_is_a_value_and_worker_survives(recorder):
    def work(x: int) -> int:
        if x < 0:
            raise ValueError("negative input\nsecond line")
        return x

    executor = LatestWinsExecutor(work, recorder)
    try:
        executor.submit(-1)
        assert executor.wait_idle(5)
        executor.submit(7)
        assert executor.wait_idle(5)
    finally:
        executor.shutdown()
    first, second = recorder.outcomes
    assert not first.ok and first.value is None
    assert first.error == "ValueError: negative input"
    assert second.ok and second.value == 7


def test_shutdown_drops_waiting_request_and_refuses_new_ones(recorder):
    release = threading.Event()
    started = threading.Event()

    def work(x: int) -> int:
        started.set()
        release.wait(5)
        return x

    executor = LatestWinsExecutor(work, recorder)
    executor.submit(1)
    assert started.wait(5)
    executor.submit(2)
    release.set()
    executor.shutdown(wait=True, timeout=5)
    assert executor._thread is not None and not executor._thread.is_alive()
    assert [o.value for o in recorder.outcomes] == []  # 1 is stale, 2 was dropped
    with pytest.raises(RuntimeError):
        executor.submit(3)


def test_wait_idle_times_out_while_busy(recorder):
    release = threading.Event()
    executor = LatestWinsExecutor(lambda x: release.wait(5), recorder)
    try:
        executor.submit(1)
        assert executor.wait_idle(0.05) is False
        release.set()
        assert executor.wait_idle(5) is True
        assert executor.is_idle()
    finally:
        executor.shutdown()


def test_stale_results_keep_a_drag_moving_only_when_asked(recorder):
    """With deliver_stale_after, a stale result is delivered (flagged) if the view waited long enough."""
    started, release = threading.Event(), threading.Event()

    def work(x: int) -> int:
        if x == 1:
            started.set()
            release.wait(5)
        return x

    executor = LatestWinsExecutor(work, recorder, deliver_stale_after=0.0)
    try:
        executor.submit(1)
        assert started.wait(5)
        executor.submit(2)  # arrives while 1 runs: 1 finishes stale
        release.set()
        assert executor.wait_idle(5)
    finally:
        executor.shutdown()
    assert [(o.value, o.stale) for o in recorder.outcomes] == [(1, True), (2, False)]
    assert [o.request for o in recorder.outcomes] == [1, 2]
    assert executor.stats.stale_delivered == executor.stats.stale == 1

    quiet = Recorder()  # a long threshold: the stale result is dropped as usual
    started.clear()
    release.clear()
    executor = LatestWinsExecutor(work, quiet, deliver_stale_after=60.0)
    try:
        executor.submit(1)
        assert started.wait(5)
        executor.submit(2)
        release.set()
        assert executor.wait_idle(5)
    finally:
        executor.shutdown()
    assert [(o.value, o.stale) for o in quiet.outcomes] == [(2, False)]


def test_an_idle_worker_thread_ends_and_the_next_request_starts_another(recorder):
    # An idle thread that has run torch keeps an OpenMP team that slows every other thread's work.
    ran_on: list[threading.Thread] = []

    def work(x: int) -> int:
        ran_on.append(threading.current_thread())
        return x

    executor = LatestWinsExecutor(work, recorder, idle_seconds=0.05)
    try:
        executor.submit(1)
        assert executor.wait_idle(5)
        ran_on[0].join(5)
        assert not ran_on[0].is_alive()
        executor.submit(2)
        assert executor.wait_idle(5)
    finally:
        executor.shutdown()
    assert [o.value for o in recorder.outcomes] == [1, 2]
    assert ran_on[1] is not ran_on[0]


def test_a_request_is_not_lost_to_a_worker_thread_that_is_still_ending(recorder, monkeypatch):
    # A thread that gave up waiting can still look alive for a moment; model "a moment" as forever.
    executor = LatestWinsExecutor(lambda x: x, recorder, idle_seconds=0.01)
    try:
        executor.submit(1)
        assert executor.wait_idle(5)
        time.sleep(0.2)  # the worker has given up waiting by now
        monkeypatch.setattr(threading.Thread, "is_alive", lambda self: True)
        executor.submit(2)
        assert executor.wait_idle(5)
    finally:
        monkeypatch.undo()
        executor.shutdown()
    assert [o.value for o in recorder.outcomes] == [1, 2]


def test_no_request_is_lost_while_idle_threads_end(recorder):
    rng = random.Random(0)
    delivered = threading.Event()
    executor = LatestWinsExecutor(lambda x: x, lambda outcome: (recorder(outcome), delivered.set()),
                                  idle_seconds=0.002)
    try:
        for value in range(300):
            delivered.clear()
            executor.submit(value)
            assert delivered.wait(5), f"request {value} was never run"
            time.sleep(rng.uniform(0.0, 0.004))
    finally:
        executor.shutdown()
    assert [o.value for o in recorder.outcomes] == list(range(300))


def test_a_thread_made_serial_leaves_every_other_threads_torch_count():
    # The window's GUI thread maps a seed now and then; its renders run on workers at full count.
    import torch

    from ganinterface.engine.device import serial_torch_on_this_thread

    before = torch.get_num_threads()
    if before == 1:
        pytest.skip("torch runs on one thread here")
    counts = {}

    def gui() -> None:
        serial_torch_on_this_thread()
        counts["made serial"] = torch.get_num_threads()
        worker = threading.Thread(target=lambda: counts.update(started_later=torch.get_num_threads()))
        worker.start()
        worker.join()

    thread = threading.Thread(target=gui)
    thread.start()
    thread.join()
    assert counts == {"made serial": 1, "started_later": before}
    assert torch.get_num_threads() == before


_FREED_MEMORY_SCRIPT = """
import ctypes, sys, torch
from ganinterface.engine.device import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                 "fordblks", "keepcost")]

mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
mallinfo2.restype = MallInfo2
took = keep_freed_memory() if sys.argv[1] == "kept" else None
mapped_before = mallinfo2().hblkhd
block = torch.empty(6 * 2**20).fill_(1.0)  # 24 MB, a 1024 px layer's output
own_mapping = mallinfo2().hblkhd - mapped_before >= 24 * 2**20
del block
print(took, own_mapping, mallinfo2().fordblks >= 24 * 2**20)  # freed but still this process's
"""


@pytest.mark.slow  # two processes that import torch
@pytest.mark.skipif(not sys.platform.startswith("linux") or not hasattr(ctypes.CDLL(None), "mallinfo2"),
                    reason="glibc's malloc")
def test_keep_freed_memory_serves_large_blocks_from_the_heap_and_keeps_them_when_freed():
    def run(mode: str) -> list[str]:
        command = [sys.executable, "-c", _FREED_MEMORY_SCRIPT, mode]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()

    assert run("plain") == ["None", "True", "False"]  # glibc's defaults: mapped alone, given back
    assert run("kept") == ["True", "False", "True"]
