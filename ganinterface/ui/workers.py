"""The Qt side of background work: hand results from worker threads to the GUI thread.

Scheduling lives in ``engine.scheduler`` (no Qt).  Here a ``QObject`` living on the GUI thread emits
a signal from the worker thread; Qt queues it, so the connected ``@Slot`` runs on the GUI thread.
(A lambda connected directly would run on the worker thread and touch widgets from there.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from ganinterface.engine.scene import Scene
from ganinterface.engine.scheduler import LatestWinsExecutor, Outcome


@dataclasses.dataclass(frozen=True)
class RenderRequest:
    renderer: Any  # engine.renderer.Renderer (or anything with .render(scene, taps))
    scene: Scene
    taps: tuple[str, ...] = ()
    purpose: str = "edit"  # "edit", "compare" (without edits), "preview" (animation frame)


# The render thread runs at a lower priority than the GUI thread: on a busy machine the GUI gets the
# CPU first and stays responsive; rendering uses what is left.
RENDER_NICE = 5


def _render(request: RenderRequest) -> Any:
    return request.renderer.render(request.scene, request.taps)


class RenderBridge(QObject):
    """One render thread; ``rendered(request, outcome)`` arrives on the GUI thread, newest only."""

    rendered = Signal(object, object)  # RenderRequest, Outcome[RenderResult]

    def __init__(self, parent: QObject | None = None, force_sync: bool = False) -> None:
        super().__init__(parent)
        self._requests: dict[int, RenderRequest] = {}
        self.executor: LatestWinsExecutor[RenderRequest, Any] = LatestWinsExecutor(
            _render, self._deliver, force_sync=force_sync, name="ganinterface-render",
            nice=RENDER_NICE)

    def submit(self, request: RenderRequest) -> int:
        request_id = self.executor.latest_id + 1
        self._requests = {request_id: request}  # only the newest can be delivered
        return self.executor.submit(request)

    def _deliver(self, outcome: Outcome) -> None:  # worker thread
        request = self._requests.get(outcome.request_id)
        if request is not None:
            self.rendered.emit(request, outcome)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, timeout=30)


class BackgroundTask(QObject):
    """Run ``function(argument)`` on a worker thread; ``finished(argument, outcome)`` on the GUI thread.

    Used for loading checkpoints and computing directions: the newest call wins, like rendering.
    """

    finished = Signal(object, object)  # argument, Outcome

    def __init__(self, function: Callable[[Any], Any], name: str, parent: QObject | None = None,
                 force_sync: bool = False) -> None:
        super().__init__(parent)
        self._arguments: dict[int, Any] = {}
        self.executor: LatestWinsExecutor[Any, Any] = LatestWinsExecutor(
            self._call, self._deliver, force_sync=force_sync, name=name)
        self._function = function

    def _call(self, item: tuple[int, Any]) -> Any:
        return self._function(item[1])

    def start(self, argument: Any) -> int:
        request_id = self.executor.latest_id + 1
        self._arguments = {request_id: argument}
        return self.executor.submit((request_id, argument))

    def busy(self) -> bool:
        return not self.executor.is_idle()

    def _deliver(self, outcome: Outcome) -> None:  # worker thread
        if outcome.request_id in self._arguments:
            self.finished.emit(self._arguments[outcome.request_id], outcome)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, timeout=60)

