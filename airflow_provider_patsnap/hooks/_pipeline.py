"""Batches through the rate limit and a pool of workers, results back in completion order.

One dispatcher thread waits for each batch's rate-limit slot *before* handing it to a worker, so no
worker ever sleeps in the limiter: every worker is a call on the wire, and ``concurrency`` workers
carry ``concurrency / latency`` calls per second whatever the QPS. The dispatcher also waits while
``concurrency`` calls are in flight or :data:`RESULT_BUFFER` results wait for the consumer, so memory
stays flat when the consumer is slower than the vendor.

Standard library only (the HTTP stack is the worker's business).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator, Sized
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, NamedTuple, TypeVar, cast

from airflow_provider_patsnap.hooks._shared import Cancellation

Result = TypeVar("Result")
#: A batch of ids: anything that knows how many ids it holds.
Batch = TypeVar("Batch", bound=Sized)

#: Finished batches that may wait for the consumer before no new call starts.
RESULT_BUFFER = 32
#: New slots a batch may take after waking too late for the one it had; then it goes on the last one.
LATE_SLOT_RETAKES = 3


class Finished(NamedTuple, Generic[Batch, Result]):
    """One batch's outcome: its result, or the error that ended it for good."""

    batch: Batch
    result: Result | None
    error: BaseException | None


class PipelineStopped(NamedTuple):
    """Why no more batches were fetched: the first error, and the ids of every batch never fetched."""

    error: BaseException
    not_fetched: int


class _Flow(Generic[Batch, Result]):
    """What the dispatcher, the workers and the consumer share, under one condition."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.stopping = threading.Event()
        self.calling = 0  # handed to a worker, answer not yet in
        self.finished: deque[Finished[Batch, Result]] = deque()
        self.dispatching = True
        self.undispatched: list[Batch] = []  # taken from the input, never handed to a worker
        self.dispatch_error: BaseException | None = None

    def stop(self) -> None:
        with self.changed:
            self.stopping.set()
            self.changed.notify_all()


def paced_map(
    batches: Iterator[Batch],
    fetch: Callable[[Batch], Result],
    *,
    concurrency: int,
    reserve_slot: Callable[[], float],
    clock: Any,
    cancellation: Cancellation,
    name: str,
    on_stop: Callable[[PipelineStopped], None],
    group_size: int = 1,
    late_slot: float | None = None,
) -> Iterator[list[Result]]:
    """Yield ``fetch(batch)`` for every batch, as they complete, at most ``concurrency`` at once.

    Results come in groups: every result that completed while the consumer handled the previous group,
    at most ``group_size`` of them (a consumer that writes each group in one transaction then writes
    fewer, larger ones exactly when it is the bottleneck, and never waits for a result to arrive).

    ``fetch`` runs in a worker after its rate-limit slot came (``reserve_slot`` takes the slot and
    returns the seconds to wait for it, waited on ``clock``), so it must not take a slot for its first
    attempt. When a batch fails for good, or ``cancellation`` is cancelled, no new batch starts, the
    batches in flight are still yielded, and then ``on_stop`` is told the first error and how many ids
    were not fetched (it raises). Closing the generator early stops dispatching and waits for the
    calls in flight.

    ``late_slot`` (seconds; None: no limit): a slot the dispatcher woke up for later than this is not
    used, and the batch takes a new one (at most :data:`LATE_SLOT_RETAKES` times). With a schedule shared
    by many processes, each holding a slot ahead, a machine too busy to run them for a moment would
    otherwise wake them all at once, and their calls would reach PatSnap together, closer than ``1/qps``.
    """
    flow: _Flow[Batch, Result] = _Flow()
    executor = ThreadPoolExecutor(concurrency, thread_name_prefix=name)

    def work(batch: Batch) -> None:
        try:
            finished = Finished(batch, fetch(batch), None)
        except BaseException as error:  # handed to the consumer thread, which raises it
            finished = Finished(batch, None, error)
        with flow.changed:
            flow.calling -= 1
            flow.finished.append(finished)
            if finished.error is not None:
                flow.stopping.set()
            flow.changed.notify_all()

    def room_for_a_call() -> bool:
        return flow.calling < concurrency and len(flow.finished) < RESULT_BUFFER

    def dispatch() -> None:
        try:
            for batch in batches:
                with flow.changed:
                    flow.changed.wait_for(lambda: flow.stopping.is_set() or room_for_a_call())
                    if flow.stopping.is_set():
                        flow.undispatched.append(batch)
                        break
                    flow.calling += 1
                for _ in range(LATE_SLOT_RETAKES + 1):
                    wait = reserve_slot()
                    due = clock.monotonic() + wait
                    if wait > 0:
                        clock.wait(flow.stopping, wait)
                    if late_slot is None or flow.stopping.is_set() or clock.monotonic() - due <= late_slot:
                        break
                if flow.stopping.is_set():
                    with flow.changed:
                        flow.calling -= 1
                    flow.undispatched.append(batch)
                    break
                executor.submit(work, batch)
            cancellation.check()  # a cancel that stopped the dispatch fails the run, calls in flight or not
        except BaseException as error:
            flow.dispatch_error = error
        finally:
            with flow.changed:
                flow.dispatching = False
                flow.changed.notify_all()

    unregister = cancellation.on_cancel(flow.stop)
    dispatcher = threading.Thread(target=dispatch, name=f"{name}dispatch", daemon=True)
    dispatcher.start()
    first_error: BaseException | None = None
    failed_ids = 0
    try:
        while True:
            with flow.changed:
                flow.changed.wait_for(lambda: flow.finished or not (flow.dispatching or flow.calling))
                if not flow.finished:
                    break
                taken = [flow.finished.popleft() for _ in range(min(group_size, len(flow.finished)))]
                flow.changed.notify_all()
            group: list[Result] = []
            for finished in taken:
                if finished.error is None:
                    group.append(cast(Result, finished.result))
                else:
                    first_error = first_error or finished.error
                    failed_ids += len(finished.batch)
            if group:
                yield group
    finally:
        flow.stop()
        dispatcher.join()
        executor.shutdown(wait=True)
        unregister()
    first_error = first_error or flow.dispatch_error
    if first_error is None:
        return
    not_fetched = failed_ids + sum(len(batch) for batch in (*flow.undispatched, *batches))
    on_stop(PipelineStopped(first_error, not_fetched))
