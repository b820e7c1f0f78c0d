"""Producers in child processes: the same units as in-process, errors and deaths reported."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Generator
from pathlib import Path

import pytest

from graph.errors import CapmapError, InputError
from ingest import parallel

ROOT = Path(__file__).resolve().parents[2]


def numbers(n: int, fail_at: int | None = None) -> Generator[int, None, str]:
    for i in range(n):
        if i == fail_at:
            raise InputError("f.csv", i + 2, "amount", "not a number")
        yield i
    return f"made {n}"


def suicide(n: int) -> Generator[int, None, str]:
    yield from range(n)
    os.kill(os.getpid(), signal.SIGKILL)
    return "never"


@pytest.mark.parametrize("in_child", [True, False])
def test_a_producer_yields_what_its_generator_yields(in_child: bool) -> None:
    p = parallel.Producer("nums", lambda: numbers(500), parallel=in_child)
    assert p.in_child is in_child
    assert list(p) == list(range(500))
    assert p.result == "made 500"


def test_interleave_gives_every_unit_of_every_producer_and_their_results() -> None:
    producers = parallel.start([("a", lambda: numbers(300)), ("b", lambda: (x for x in "xyz"))])
    got = list(parallel.interleave(producers))
    assert sorted(x for x in got if isinstance(x, int)) == list(range(300))
    assert [x for x in got if isinstance(x, str)] == ["x", "y", "z"]  # each producer's own order is kept
    assert producers[0].result == "made 300" and producers[1].result is None


def test_an_error_in_the_child_is_raised_here_after_the_units_before_it() -> None:
    p = parallel.Producer("nums", lambda: numbers(10, fail_at=7), parallel=True)
    seen = []
    with pytest.raises(InputError, match="f.csv:9: field .amount. not a number") as err:
        for x in p:
            seen.append(x)
    assert seen == list(range(7)) and err.value.line == 9


def test_a_child_that_dies_is_reported_with_its_exit_code() -> None:
    producers = parallel.start([("dies", lambda: suicide(5))])
    seen = []
    with pytest.raises(CapmapError, match=r"dies worker process stopped before finishing \(exit code -9\)"):
        for x in parallel.interleave(producers):
            seen.append(x)
    assert seen == list(range(5))


def test_workers_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPMAP_WORKERS", "0")
    assert parallel.workers_enabled() is False
    (p,) = parallel.start([("nums", lambda: numbers(3))])
    assert not p.in_child and list(parallel.interleave([p])) == [0, 1, 2] and p.result == "made 3"



@pytest.mark.parametrize(("setting", "count"), [("0", 0), ("1", 1), ("3", 3), (" 2 ", 2)])
def test_worker_count_follows_the_setting(monkeypatch: pytest.MonkeyPatch, setting: str, count: int) -> None:
    monkeypatch.setenv("CAPMAP_WORKERS", setting)
    assert parallel.worker_count() == count and parallel.workers_enabled() is (count > 0)


def test_worker_count_defaults_to_the_usable_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAPMAP_WORKERS", raising=False)
    assert parallel.worker_count() == len(os.sched_getaffinity(0)) >= 1


@pytest.mark.parametrize("setting", ["-1", "two", "1.5", "1_0", "\u0662", "0x2", "+2"])
def test_a_bad_worker_count_is_named(monkeypatch: pytest.MonkeyPatch, setting: str) -> None:
    monkeypatch.setenv("CAPMAP_WORKERS", setting)
    with pytest.raises(CapmapError, match=re.escape(f"CAPMAP_WORKERS={setting!r}")):
        parallel.worker_count()


def niceness() -> Generator[int, None, int]:
    yield os.nice(0)
    return os.nice(0)


def test_workers_run_below_the_writer_priority() -> None:
    """The writer (this process) is scheduled before the workers, so it keeps up with them; a
    producer with less work runs lower still."""
    with parallel.Producer("nice", niceness, parallel=True) as p:
        assert p.in_child and list(p) == [min(os.nice(0) + parallel.WORKER_NICENESS, 19)]
    ps = parallel.start([("filler", niceness)], niceness=parallel.FILLER_NICENESS)
    ps += parallel.start([("main", niceness)], joining=ps)
    assert parallel.FILLER_NICENESS > parallel.WORKER_NICENESS
    list(parallel.interleave(ps))
    assert [(p.name, p.result) for p in ps] == [("filler", min(os.nice(0) + parallel.FILLER_NICENESS, 19)),
                                                ("main", min(os.nice(0) + parallel.WORKER_NICENESS, 19))]


def blas_threads() -> Generator[list[int], None, None]:
    from threadpoolctl import threadpool_info

    yield sorted({pool["num_threads"] for pool in threadpool_info()})


def test_workers_use_one_blas_thread_each() -> None:
    """A worker's BLAS threads would contend with the other workers (one per CPU); the limit
    ends with the import."""
    import numpy as np
    from threadpoolctl import threadpool_info, threadpool_limits

    assert np.ones((2, 2)).dot(np.ones(2)).tolist() == [2.0, 2.0]  # BLAS loaded before the fork
    with threadpool_limits(2):
        with parallel.one_thread_each():
            (p,) = parallel.start([("blas", blas_threads)])
            assert p.in_child and list(parallel.interleave([p])) == [[1]]
        assert {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"} == {2}


def _gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie nobody reaped has ended too)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_worker_does_not_outlive_its_killed_parent(tmp_path: Path) -> None:
    """Regression: a worker blocked writing to its pipe when its parent was killed (kill -9 of
    `capmap demo`) waited forever, holding the store: it had inherited its own pipe's read end."""
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from ingest import parallel

        def forever():
            while True:
                yield b"x" * 100_000

        p = parallel.Producer("forever", forever, parallel=True)
        print(p._proc.pid, flush=True)
        time.sleep(60)
    """))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    time.sleep(1.0)  # the child fills the queue and the pipe, then blocks writing
    assert not _gone(child)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(child)

def test_capmap_errors_cross_the_process_boundary_whole() -> None:
    import pickle

    from graph.errors import Infeasible, NotFound

    for e in (InputError("a.csv", 3, "at", "bad date"), NotFound("Rep", "r9"), Infeasible("no legal rep", "roles")):
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is type(e) and str(back) == str(e) and vars(back) == vars(e)


def test_the_cli_names_a_bad_worker_count_before_any_work(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Regression: `capmap demo` named it only after minutes of work; `capmap ingest` never."""
    from typer.testing import CliRunner

    from api.cli import app

    monkeypatch.setenv("CAPMAP_WORKERS", "two")
    store = tmp_path / "s.sqlite"
    result = CliRunner().invoke(app, ["ingest", "--format", "p4g", str(tmp_path), "--store", f"sqlite:///{store}"])
    assert result.exit_code == 2 and "CAPMAP_WORKERS='two'" in result.output
    assert not store.exists()  # nothing was started
    # with --json the error is the last line, as JSON, as for every other error (it was absent)
    capmap = Path(sys.executable).parent / "capmap"  # as a user runs it: the check reads the command line
    result = subprocess.run([str(capmap), "ingest", "--format", "p4g", str(tmp_path), "--store", f"sqlite:///{store}",
                             "--json"], capture_output=True, text=True, timeout=120, env={**os.environ, "CAPMAP_WORKERS": "two"})
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 2 and last == {"error": "CAPMAP_WORKERS='two': want a whole number of worker processes (0: none)",
                                              "type": "CapmapError"}
