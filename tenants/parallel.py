"""Many items (tenant schemas, mostly) on a few workers, each with a connection of its own.

Fleet migrations, the upgrade's write step and bulk schema creation all do the same: hand the
items to ``jobs`` workers that each hold their own psycopg connection, report every item as it
finishes, go on after a failure or stop at the first one, and start nothing new after Ctrl-C.
``run()`` does that with threads (the work waits on PostgreSQL) or with forked processes (the
work is CPU-bound Python, such as Django's migration executor). A change to the process path
is measured by ``benchmarks/fleet_migrate.py`` (figures: docs/benchmarks.md#fleet-migrations).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import connections

from tenants import postgres

PROCESS_CHUNK = 8  # most items per task handed to a worker process


@dataclass
class Outcome:
    """What became of one item: ``work``'s return value, or the error it raised."""

    item: Any
    result: Any = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Stopped(Exception):
    """The run stopped (a failure with ``stop_on_error``, or Ctrl-C) before this item got its
    connection: nothing of it was done."""


class WorkerConnection:
    """A worker's own psycopg connection: opened on first use, and again if it was closed
    (a failed item may leave it so). Work that needs no connection never opens one."""

    def __init__(self, connect: Callable[[], psycopg.Connection] = postgres.connect):
        self._connect = connect
        self._conn: psycopg.Connection | None = None
        self._stopped = False

    def get(self) -> psycopg.Connection:
        if not self._stopped and (self._conn is None or self._conn.closed):
            self._conn = self._connect()
        if self._stopped:  # also when stop() came while connecting
            raise Stopped
        return self._conn

    def stop(self) -> None:
        """Called from another thread: cancel the statement running on the connection now
        (the item's transaction rolls back) and hand the connection out no more. Best
        effort: a statement sent just after the cancel still runs."""
        self._stopped = True
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.cancel_safe()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


Work = Callable[[Any, WorkerConnection], Any]
OnDone = Callable[[Outcome], None]


def default_jobs() -> int:
    """Workers when the operator does not say: one per CPU."""
    return os.cpu_count() or 1


def run(
    items: Iterable,
    work: Work,
    *,
    jobs: int,
    processes: bool = False,
    stop_on_error: bool = False,
    on_done: OnDone | None = None,
    connect: Callable[[], psycopg.Connection] = postgres.connect,
) -> list[Outcome]:
    """``work(item, conn)`` for every item on ``jobs`` workers; the outcomes in the order they
    finished, each also passed to ``on_done`` (in the calling thread) as it comes.

    ``work`` raising an error fails that item only, unless ``stop_on_error``: then no new item
    starts, the items being worked on are cancelled (threads) or finished (processes), and the
    first failure is the first failed outcome. Ctrl-C does the same, then raises.
    ``processes=True`` forks the workers (``work`` and the items are inherited, not pickled;
    only results and errors travel back), for work that holds the GIL.
    """
    items = list(items)
    if not items:
        return []
    jobs = max(1, min(jobs, len(items)))
    run_workers = _run_in_processes if processes else _run_in_threads
    return run_workers(items, work, jobs, stop_on_error, on_done or _ignore, connect)


def _ignore(outcome: Outcome) -> None:
    pass


def _attempt(work: Work, item, conn: WorkerConnection) -> Outcome:
    try:
        return Outcome(item, work(item, conn))
    except Exception as error:  # reported as the item's outcome
        return Outcome(item, error=error)


# --- Threads -------------------------------------------------------------------------------------


def _run_in_threads(items, work, jobs, stop_on_error, on_done, connect) -> list[Outcome]:
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for item in items:
        todo.put(item)
    finished: queue.SimpleQueue = queue.SimpleQueue()  # outcomes, and None when a worker ends
    stop = threading.Event()
    conns = [WorkerConnection(connect) for _ in range(jobs)]

    def worker(conn: WorkerConnection):
        try:
            while not stop.is_set():
                try:
                    item = todo.get_nowait()
                except queue.Empty:
                    return
                outcome = _attempt(work, item, conn)
                if isinstance(outcome.error, Stopped):
                    return  # stopped before it began: nothing to report
                finished.put(outcome)
                if stop_on_error and not outcome.ok:
                    _stop(stop, conns)  # after the put: the first failure is reported first
        finally:
            conn.close()
            finished.put(None)

    threads = [threading.Thread(target=worker, args=(conn,)) for conn in conns]
    for thread in threads:
        thread.start()
    outcomes, running = [], len(threads)
    try:
        while running:
            outcome = finished.get()
            if outcome is None:
                running -= 1
                continue
            outcomes.append(outcome)
            on_done(outcome)
    except BaseException:  # Ctrl-C, or on_done failed
        _stop(stop, conns)
        raise
    finally:
        for thread in threads:
            thread.join()
    return outcomes


def _stop(stop: threading.Event, conns: Sequence[WorkerConnection]) -> None:
    stop.set()
    for conn in conns:
        conn.stop()


# --- Forked processes ----------------------------------------------------------------------------

# Set in the parent before the workers are forked (one process-mode run at a time); they
# inherit it.
_FORKED: dict = {}
_worker_conn: WorkerConnection | None = None


def _run_in_processes(items, work, jobs, stop_on_error, on_done, connect) -> list[Outcome]:
    _FORKED.update(items=items, work=work, connect=connect)
    connections.close_all()  # never share a server session with the forked workers
    # A few items per task: fewer round trips between processes, progress still smooth.
    size = max(1, min(PROCESS_CHUNK, len(items) // (jobs * 4)))
    chunks = [range(start, min(start + size, len(items))) for start in range(0, len(items), size)]
    context = multiprocessing.get_context("fork")
    outcomes = []
    try:
        with ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker) as pool:
            futures = {_submit(pool, chunk): chunk for chunk in chunks}
            try:
                for future in as_completed(futures):
                    for outcome in _chunk_outcomes(future, futures[future], items):
                        outcomes.append(outcome)
                        on_done(outcome)
                        if stop_on_error and not outcome.ok:
                            _cancel(futures)
            except BaseException:  # Ctrl-C, or on_done failed
                _cancel(futures)
                raise
    finally:
        _FORKED.clear()
    return outcomes


def _start_worker() -> None:
    global _worker_conn
    _worker_conn = WorkerConnection(_FORKED["connect"])


def _submit(pool: ProcessPoolExecutor, chunk: range) -> Future:
    try:
        return pool.submit(_run_chunk, chunk)
    except BrokenProcessPool as error:  # a worker died already: this chunk fails with it
        failed = Future()
        failed.set_exception(error)
        return failed


def _run_chunk(indexes: range) -> list[tuple[Any, Exception | None]]:
    """In a worker: the chunk's items, as (result, error) pairs that can be pickled."""
    pairs = []
    for index in indexes:
        outcome = _attempt(_FORKED["work"], _FORKED["items"][index], _worker_conn)
        pairs.append((outcome.result, outcome.error and _picklable(outcome.error)))
    return pairs


def _picklable(error: Exception) -> Exception:
    try:
        pickle.dumps(error)
    except Exception:
        return RuntimeError(postgres.describe_error(error))
    return error


def _chunk_outcomes(future: Future, indexes: range, items: list) -> list[Outcome]:
    if future.cancelled():
        return []
    try:
        pairs = future.result()
    except Exception as error:  # the worker died (BrokenProcessPool): all its items failed
        return [Outcome(items[index], error=error) for index in indexes]
    return [
        Outcome(items[index], result, error)
        for index, (result, error) in zip(indexes, pairs, strict=True)
    ]


def _cancel(futures: Iterable[Future]) -> None:
    for future in futures:
        future.cancel()
