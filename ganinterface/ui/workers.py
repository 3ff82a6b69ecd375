"""The Qt side of background work: hand results from worker threads to the GUI thread.

Scheduling lives in ``engine.scheduler`` (no Qt).  Here a ``QObject`` living on the GUI thread emits
a signal from the worker thread; Qt queues it, so the connected ``@Slot`` runs on the GUI thread.
(A lambda connected directly would run on the worker thread and touch widgets from there.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from ganinterface.engine.scheduler import (LatestWinsExecutor, Outcome, RenderRequest,
                                           render_executor)


class RenderBridge(QObject):
    """One render thread; ``rendered(request, outcome)`` arrives on the GUI thread.

    The newest request's result always arrives last; during a drag the results of superseded
    requests arrive too (``outcome.stale``), at most 60 a second, so the picture keeps up.
    """

    rendered = Signal(object, object)  # RenderRequest, Outcome[RenderResult]

    def __init__(self, parent: QObject | None = None, force_sync: bool = False) -> None:
        super().__init__(parent)
        self.executor = render_executor(self._deliver, force_sync=force_sync)

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

