"""The Qt side of background work: hand results from worker threads to the GUI thread.

Scheduling lives in ``engine.scheduler`` (no Qt).  Here a ``QObject`` living on the GUI thread emits
a signal from the worker thread; Qt queues it, so the connected ``@Slot`` runs on the GUI thread.
(A lambda connected directly would run on the worker thread and touch widgets from there.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

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
# During a drag every finished render is already stale (a newer change is waiting), yet it is newer
# than the picture on screen: show it, at most as often as a 60 Hz display can, so the picture
# follows the slider at the renderer's pace.  The newest request's result always comes last.
SHOW_STALE_AFTER = 1 / 60


def _render(request: RenderRequest) -> Any:
    return request.renderer.render(request.scene, request.taps)


class RenderBridge(QObject):
    """One render thread; ``rendered(request, outcome)`` arrives on the GUI thread.

    The newest request's result always arrives last; during a drag the results of superseded
    requests arrive too (``outcome.stale``), at most 60 a second, so the picture keeps up.
    """

    rendered = Signal(object, object)  # RenderRequest, Outcome[RenderResult]

    def __init__(self, parent: QObject | None = None, force_sync: bool = False) -> None:
        super().__init__(parent)
        self.executor: LatestWinsExecutor[RenderRequest, Any] = LatestWinsExecutor(
            _render, self._deliver, force_sync=force_sync, name="ganinterface-render",
            nice=RENDER_NICE, deliver_stale_after=SHOW_STALE_AFTER)

    def submit(self, request: RenderRequest) -> int:
        return self.executor.submit(request)

    def _deliver(self, outcome: Outcome) -> None:  # worker thread
        self.rendered.emit(outcome.request, outcome)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, timeout=30)


class BackgroundTask(QObject):
    """Run ``function(argument)`` on a worker thread; ``finished(argument, outcome)`` on the GUI thread.

    Used for loading checkpoints, computing directions and exports: the newest call wins, and a
    result whose call was superseded meanwhile is dropped.
    """

    finished = Signal(object, object)  # argument, Outcome

    def __init__(self, function: Callable[[Any], Any], name: str, parent: QObject | None = None,
                 force_sync: bool = False) -> None:
        super().__init__(parent)
        self.executor: LatestWinsExecutor[Any, Any] = LatestWinsExecutor(
            function, self._deliver, force_sync=force_sync, name=name)
        self._arrived = 0  # id of the newest outcome that reached the GUI thread
        self.finished.connect(self._note_arrival)  # first, so busy() is right in every other slot

    def start(self, argument: Any) -> int:
        return self.executor.submit(argument)

    def busy(self) -> bool:
        """True until the outcome of the newest ``start`` has arrived on the GUI thread.

        (Not the worker's own idea of idle: the worker is still finishing up for a moment after it
        sent the outcome, and a slot asking it then would wait forever for another one.)
        """
        return self._arrived != self.executor.latest_id

    @Slot(object, object)
    def _note_arrival(self, _argument: Any, outcome: Outcome) -> None:
        self._arrived = outcome.request_id

    def _deliver(self, outcome: Outcome) -> None:  # worker thread
        self.finished.emit(outcome.request, outcome)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, timeout=60)

