"""Run an import's producers (read, validate, code) in child processes while this one writes.

Coding is CPU-bound and writing is bound by the store, so on two cores an import is faster when
other processes produce the units of work and this one applies them. A :class:`Producer` forks
a child that runs a generator and streams what it yields back through a pipe; a reader thread
here unpickles the units into a bounded queue, so the child works ahead of the writer (up to
:data:`QUEUE_UNITS` units: memory stays bounded however large the input). :func:`interleave`
yields the units of several producers in the order they arrive.

The child inherits the trained coder and the codebook through the fork (nothing is re-trained
or pickled on the way in), never touches the store, and only units of work travel back. What
it inherits is frozen out of its garbage collections (:func:`gc.freeze`), which would otherwise
traverse the parent's whole heap again and again. Where ``fork`` is unavailable, or with
``CAPMAP_WORKERS=0``, the generators simply run here, one after the other: the units, and so
the store, are the same.

Units of different producers must not depend on each other's order (each source writes its
own nodes, and implied relationships are kept by the store whichever end arrives first). An
error in a child is raised here when its turn comes; a child that dies (killed, out of memory)
raises :class:`~graph.errors.CapmapError` naming its exit code. Each unit is applied in its own
transaction, so what was written before stays whole and a rerun completes it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import multiprocessing
import os
import pickle
import queue
import signal
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any, Generic, TypeVar

from threadpoolctl import threadpool_limits

from graph.errors import CapmapError

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

QUEUE_UNITS = 32
_ITEM, _DONE, _ERROR, _DIED = "item", "done", "error", "died"


# Workers run at a lower priority than the process writing their units: whenever the writer has
# a unit to write it gets a core, so it keeps up with the workers instead of being left a backlog
# to write alone, on one core, after they finish; and while it waits they have every core.
WORKER_NICENESS = 5
# A producer with less work than another can run lower still (see start): the longest one sets
# when the import ends, and the shorter ones fill the time it leaves.
FILLER_NICENESS = 15
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def worker_count() -> int:
    """How many worker processes an import may keep busy: ``CAPMAP_WORKERS`` if set (``0``: none,
    everything in this process), else the CPUs this process may run on; 0 without ``fork``."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return 0
    setting = os.environ.get("CAPMAP_WORKERS", "").strip()
    if setting:
        if not (setting.isascii() and setting.isdigit()):  # int() would take "1_0", "٢", "-1"
            raise CapmapError(f"CAPMAP_WORKERS={setting!r}: want a whole number of worker processes (0: none)")
        return int(setting)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def workers_enabled() -> bool:
    """Whether producers run in child processes (``CAPMAP_WORKERS=0`` turns it off)."""
    return worker_count() > 0


# The read ends of the producers' pipes open in this process. A forked child inherits them all:
# it closes them first thing, so that once the parent is gone nothing reads its pipe and its
# next write fails (a child holding its own pipe's read end would wait on a full pipe forever).
_READ_ENDS: set[Connection] = set()


def _die_with_parent() -> None:
    """Have the kernel kill this process when its parent dies (Linux; elsewhere the closed pipe
    ends it at its next write)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def _child(send: Connection, make: Callable[[], Generator[Any, None, Any]], parent: int, niceness: int) -> None:
    for end in list(_READ_ENDS):
        end.close()
    _READ_ENDS.clear()
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
    # What the child inherits (the trained coder, the codebook, every module) outlives it: the
    # permanent generation keeps the child's garbage collections from scanning it again and
    # again (and from writing to its pages, which the fork shares with the parent).
    gc.freeze()
    os.nice(niceness)
    for var in _THREAD_VARS:  # one thread for a threaded library the worker loads (see start)
        os.environ[var] = "1"
    try:
        gen = make()
        while True:
            try:
                item = next(gen)
            except StopIteration as stop:
                send.send((_DONE, stop.value))
                return
            send.send((_ITEM, item))
    except BaseException as e:  # noqa: BLE001 - every failure goes back to the parent
        try:
            send.send((_ERROR, e))
        except (pickle.PicklingError, TypeError, AttributeError):
            send.send((_ERROR, CapmapError(f"{type(e).__name__}: {e}")))
    finally:
        send.close()


class Producer(Generic[T, R]):
    """What ``make()`` yields, produced in a child process started at once (or, without
    workers, here when iterated). After the iteration, :attr:`result` holds the generator's
    return value. Iterate one producer directly, or several with :func:`interleave`."""

    def __init__(
        self,
        name: str,
        make: Callable[[], Generator[T, None, R]],
        parallel: bool | None = None,
        into: queue.Queue[tuple[Producer[Any, Any], str, Any]] | None = None,
        niceness: int = WORKER_NICENESS,
    ) -> None:
        self.name = name
        self.result: R | None = None
        self._make = make
        self._proc: Any = None
        self._recv: Connection | None = None
        self._queue = into if into is not None else queue.Queue(QUEUE_UNITS)
        self._closed = threading.Event()
        if parallel if parallel is not None else workers_enabled():
            ctx = multiprocessing.get_context("fork")
            recv, send = ctx.Pipe(duplex=False)
            self._proc = ctx.Process(target=_child, args=(send, make, os.getpid(), niceness), name=f"capmap-{name}", daemon=True)
            _READ_ENDS.add(recv)  # for the children forked from now on to close (see _child)
            self._proc.start()
            send.close()
            self._recv = recv
            threading.Thread(target=self._read, name=f"capmap-{name}-reader", daemon=True).start()

    @property
    def in_child(self) -> bool:
        return self._recv is not None

    def _read(self) -> None:
        recv = self._recv
        assert recv is not None
        while True:
            try:
                kind, payload = recv.recv()
            except (EOFError, OSError):
                self._put(_DIED, None)
                return
            except Exception as e:  # noqa: BLE001 - e.g. a unit that cannot be unpickled
                self._put(_ERROR, e)
                return
            if not self._put(kind, payload) or kind != _ITEM:
                return

    def _put(self, kind: str, payload: Any) -> bool:
        """Queue a message for the consumer, waiting while the queue is full; False (the message
        dropped) once the producer is closed: nobody will take it, and the reader must not wait
        forever with the units it holds (a consumer that stopped early, e.g. on a failed write)."""
        while not self._closed.is_set():
            try:
                self._queue.put((self, kind, payload), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _died(self) -> CapmapError:
        if self._proc is not None:
            self._proc.join(timeout=10)
        code = self._proc.exitcode if self._proc is not None else None
        return CapmapError(
            f"the {self.name} worker process stopped before finishing (exit code {code}); what was written "
            "before is whole; run the import again to complete it"
        )

    def _take(self, kind: str, payload: Any) -> bool:
        """Handle a message that is not an item; True when the producer is done."""
        if kind == _DONE:
            self.result = payload
            return True
        if kind == _DIED:
            raise self._died()
        raise payload

    def __iter__(self) -> Iterator[T]:
        if not self.in_child:
            self.result = yield from self._make()
            return
        try:
            while True:
                _, kind, payload = self._queue.get()
                if kind == _ITEM:
                    yield payload
                elif self._take(kind, payload):
                    return
        finally:
            self.close()

    def __enter__(self) -> Producer[T, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the child (if still running) and its reader thread, and release the pipe."""
        self._closed.set()
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.terminate()
            self._proc.join(timeout=10)
            self._proc = None
        if self._recv is not None:
            _READ_ENDS.discard(self._recv)
            self._recv.close()
            self._recv = None


def mapped(make: Callable[[], Generator[T, None, R]], fn: Callable[[T], T]) -> Callable[[], Generator[T, None, R]]:
    """A factory of ``make()``'s generator with ``fn`` applied to every item it yields (e.g. a
    store's ``prepare``, so a worker encodes the units it makes); the return value is kept."""

    def gen() -> Generator[T, None, R]:
        inner = make()
        while True:
            try:
                item = next(inner)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            yield fn(item)

    return gen


@contextmanager
def one_thread_each() -> Iterator[None]:
    """BLAS and OpenMP libraries limited to one thread, here and in the workers forked meanwhile,
    which keep the limit. One worker per CPU: a worker's own threads (numpy's products in the
    text coder) would only contend with the other workers and the writer, and OpenBLAS threads
    spin while they wait (about 0.85x the workers' CPU time on the demo). The limit covers the
    whole import: raising it again in between would start threads that spin here."""
    with threadpool_limits(1):
        yield


def start(
    makers: Sequence[tuple[str, Callable[[], Generator[Any, None, Any]]]],
    joining: Sequence[Producer[Any, Any]] = (),
    niceness: int = WORKER_NICENESS,
) -> list[Producer[Any, Any]]:
    """Producers for ``makers`` (name, generator factory) sharing one bounded queue, for
    :func:`interleave`; their children start at once. With ``joining`` (producers started
    before), the new ones share those producers' queue, so all of them can be interleaved.
    Their children run ``niceness`` below this process's priority: :data:`FILLER_NICENESS`
    for producers with less work than others started with them, which then take a core only
    when the others leave one (on 2 CPUs the longest producer otherwise finishes last, alone).

    Start them within :func:`one_thread_each`: a child keeps the thread limits it was forked
    with."""
    shared: queue.Queue[tuple[Producer[Any, Any], str, Any]] = joining[0]._queue if joining else queue.Queue(QUEUE_UNITS)
    return [Producer(name, make, into=shared, niceness=niceness) for name, make in makers]


def interleave(producers: Sequence[Producer[Any, Any]]) -> Iterator[Any]:
    """The units of ``producers`` (made by :func:`start`) in the order they arrive; in this
    process, one producer after the other. Each producer's ``result`` is set when it is done."""
    try:
        for p in producers:
            if not p.in_child:
                yield from p
        running = {p for p in producers if p.in_child}
        if not running:
            return
        shared = next(iter(running))._queue
        while running:
            p, kind, payload = shared.get()
            if kind == _ITEM:
                yield payload
            elif p._take(kind, payload):
                running.discard(p)
    finally:
        for p in producers:
            p.close()
