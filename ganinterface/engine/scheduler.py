"""One background worker where the newest request wins: the render loop of the window, without Qt.

The window fires a request for every slider step; rendering all of them would leave the image
seconds behind the slider.  ``LatestWinsExecutor`` keeps at most one request waiting: a new
``submit`` replaces the waiting one (it is never run), and a result whose request was superseded
while it ran is dropped instead of delivered (unless ``deliver_stale_after`` says the view has
waited long enough; it is then delivered flagged ``stale``).  So the last thing delivered is always
the result of the last request submitted, and the worker never falls more than one request behind.

Results are values (``Outcome``), errors included: the function's exception becomes
``Outcome.error`` and the worker carries on.  ``on_result`` is called on the worker thread; a GUI
hands the outcome over to its own thread (a queued Qt signal).  ``force_sync=True`` runs every
request on the caller's thread at ``submit``, which makes tests deterministic (napari's slicer does
the same).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

Request = TypeVar("Request")
Result = TypeVar("Result")

log = logging.getLogger(__name__)

# A worker thread ends after this long without a request; the next request starts a new one (about
# 1.5 ms).  Why: every thread that has run torch on the CPU keeps a team of OpenMP threads for as
# long as it lives, and once the teams' threads outnumber the cores, GNU OpenMP (torch's CPU build)
# stops letting its threads spin between parallel regions: every op of every thread then waits on a
# wake-up, and small models run 1.5-2x slower (a built-in model render 14 -> 28 ms beside one idle
# thread that had rendered once; a projection in the window 6.8 -> 3.9 s once its loader and render
# threads had ended).  Idle threads therefore take their team with them.
IDLE_THREAD_SECONDS = 0.5


@dataclasses.dataclass(frozen=True)
class Outcome(Generic[Result]):
    """What one request produced: ``value``, or ``error`` (one line) if the function raised."""

    request_id: int
    value: Result | None
    error: str | None
    seconds: float
    stale: bool = False  # a newer request was already waiting when this one finished
    request: Any = None  # the request this is the result of

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclasses.dataclass
class ExecutorStats:
    submitted: int = 0
    completed: int = 0  # ran to the end (delivered or stale)
    superseded: int = 0  # replaced while waiting: never ran
    stale: int = 0  # ran, but a newer request arrived meanwhile
    delivered: int = 0
    stale_delivered: int = 0  # stale, delivered anyway to keep the display moving


class LatestWinsExecutor(Generic[Request, Result]):
    """Run ``function(request)`` on one worker thread; only the newest request's result is delivered."""

    def __init__(self, function: Callable[[Request], Result],
                 on_result: Callable[[Outcome[Result]], Any], *, force_sync: bool = False,
                 name: str = "latest-wins", nice: int = 0,
                 deliver_stale_after: float | None = None,
                 idle_seconds: float | None = IDLE_THREAD_SECONDS) -> None:
        self._function = function
        self._idle_seconds = idle_seconds  # None: the worker thread lives until shutdown
        self._on_result = on_result
        self.force_sync = force_sync
        self._name = name
        self._nice = nice  # > 0: the worker yields the CPU to the caller's thread (Linux)
        # While requests keep coming faster than they run (a slider dragged), every result is
        # stale by the time it is ready.  With ``deliver_stale_after`` set, a stale result is still
        # delivered (Outcome.stale) when nothing was delivered for that many seconds, so a view
        # keeps moving during the drag; the newest request's result always comes last.
        self._deliver_stale_after = deliver_stale_after
        self._last_delivery = time.monotonic()
        self._condition = threading.Condition()
        self._pending: tuple[int, Request] | None = None
        self._running_id: int | None = None
        self._last_id = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self.stats = ExecutorStats()

    # ---- public --------------------------------------------------------------------------------
    @property
    def latest_id(self) -> int:
        """Id of the newest request submitted (0 before the first)."""
        return self._last_id

    def submit(self, request: Request) -> int:
        """Queue ``request``, replacing any request still waiting; returns its id (1, 2, ...)."""
        with self._condition:
            if self._closed:
                raise RuntimeError(f"{self._name} executor is shut down")
            self._last_id += 1
            request_id = self._last_id
            self.stats.submitted += 1
            if not self.force_sync:
                if self._pending is not None:
                    self.stats.superseded += 1
                self._pending = (request_id, request)
                self._ensure_thread()
                self._condition.notify_all()
                return request_id
        self._run_one(request_id, request)  # force_sync: on the caller's thread, outside the lock
        return request_id

    def is_idle(self) -> bool:
        with self._condition:
            return self._pending is None and self._running_id is None

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is waiting or running; False if ``timeout`` seconds passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while self._pending is not None or self._running_id is not None:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._condition.wait(remaining)
        return True

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Drop the waiting request and stop the worker (after the running request, if ``wait``)."""
        with self._condition:
            self._closed = True
            if self._pending is not None:
                self.stats.superseded += 1
                self._pending = None
            self._condition.notify_all()
            thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # ---- worker --------------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        if self._nice > 0:
            _lower_thread_priority(self._nice)
        while True:
            with self._condition:
                while self._pending is None and not self._closed:
                    if not self._condition.wait(self._idle_seconds):
                        if self._pending is None and not self._closed:
                            self._thread = None  # under the lock: submit starts a new one
                            return
                if self._pending is None:  # closed and nothing to do
                    return
                request_id, request = self._pending
                self._pending = None
                self._running_id = request_id
            try:
                self._run_one(request_id, request)
            finally:
                with self._condition:
                    self._running_id = None
                    self._condition.notify_all()

    def _run_one(self, request_id: int, request: Request) -> None:
        started = time.perf_counter()
        try:
            value, error = self._function(request), None
        except Exception as exc:  # the error is the result; the worker must survive it
            log.debug("%s request %d failed", self._name, request_id, exc_info=True)
            value, error = None, f"{type(exc).__name__}: {exc}".splitlines()[0]
        seconds = time.perf_counter() - started
        with self._condition:
            self.stats.completed += 1
            stale = request_id != self._last_id
            if stale:
                self.stats.stale += 1
                waited = time.monotonic() - self._last_delivery
                if self._deliver_stale_after is None or waited < self._deliver_stale_after:
                    return
                self.stats.stale_delivered += 1
            self.stats.delivered += 1
            self._last_delivery = time.monotonic()
        self._on_result(Outcome(request_id, value, error, seconds, stale, request))


# ---- the window's render thread ---------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class RenderRequest:
    renderer: Any  # engine.renderer.Renderer (or anything with .render(scene, taps))
    scene: Any  # engine.scene.Scene
    taps: tuple[str, ...] = ()
    purpose: str = "edit"  # "edit", "compare" (without edits), "preview" (animation frame)
    draft: bool = False  # the fast mode's reduced precision will do (a drag is in progress)


# The render thread runs at a lower priority than the GUI thread: on a busy machine the GUI gets the
# CPU first and stays responsive; rendering uses what is left.
RENDER_NICE = 5
# During a drag every finished render is already stale (a newer change is waiting), yet it is newer
# than the picture on screen: show it, at most as often as a 60 Hz display can, so the picture
# follows the slider at the renderer's pace.  The newest request's result always comes last.
SHOW_STALE_AFTER = 1 / 60


def render_executor(on_result: Callable[[Outcome], Any], *,
                    force_sync: bool = False) -> LatestWinsExecutor[RenderRequest, Any]:
    """The window's render thread: ``on_result(outcome)`` gets each RenderResult delivered."""
    return LatestWinsExecutor(_render, on_result, force_sync=force_sync, name="ganinterface-render",
                              nice=RENDER_NICE, deliver_stale_after=SHOW_STALE_AFTER)


def _render(request: RenderRequest) -> Any:
    return request.renderer.render(request.scene, request.taps, draft=request.draft)


def _lower_thread_priority(nice: int) -> None:
    """Make the calling thread (only) yield the CPU to others when both are ready to run.

    On Linux every thread has its own nice value; elsewhere this does nothing.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (AttributeError, OSError, PermissionError):
        log.debug("cannot lower the priority of thread %s", threading.current_thread().name)
