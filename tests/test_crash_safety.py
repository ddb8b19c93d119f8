"""Crash safety: a run killed with SIGKILL at any point (reading, generating, writing, between tasks)
and rerun ends with the output of an uninterrupted run; a second run on a busy output leaves at
once. The real CLI in subprocesses, the real HTTP engine against a local server, `prox verify`."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import run_prox
from served_refine import (
    DOCUMENTS,
    any_file,
    assert_reconciled,
    outcome,
    refine_args,
    served,
    uninterrupted,
    verify,
    write_shards,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return write_shards(tmp_path_factory.mktemp("shards"))


@pytest.fixture(scope="module")
def reference(shards, tmp_path_factory) -> Path:
    """An uninterrupted run."""
    return uninterrupted(shards, tmp_path_factory.mktemp("reference") / "out")


@pytest.fixture(scope="module")
def big_shards(tmp_path_factory) -> Path:
    """One shard of 1,600 short documents (real lines), more than the writer buffers (1,000 rows),
    so part of it reaches logs/partial/ while the rest is still generating."""
    folder = tmp_path_factory.mktemp("big-shards")
    lines = [line for row in DOCUMENTS.read_bytes().splitlines() for line in orjson.loads(row)["text"].splitlines()
             if len(line.split()) >= 12]
    rows = [{"id": f"line-{i}", "text": lines[i % len(lines)]} for i in range(1600)]
    pq.write_table(pa.Table.from_pylist(rows), folder / "big.parquet")
    return folder


@pytest.fixture(scope="module")
def big_reference(big_shards, tmp_path_factory) -> Path:
    return uninterrupted(big_shards, tmp_path_factory.mktemp("big-reference") / "out", *BIG)


def start(*args: str) -> subprocess.Popen:
    """prox in a process group of its own, so that SIGKILL reaches every process of the run."""
    return subprocess.Popen([sys.executable, "-m", "prox", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def kill(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)


def wait_for(condition, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"prox ended before the kill point: {process.returncode}\n{process.stderr.read()[-3000:]}")
        assert time.monotonic() < deadline, "the kill point never came"
        time.sleep(0.005)


def hold_when(condition):
    """A server answer that holds (never answers) every request from the first one that meets
    `condition(key)`: the run is then stuck at that point until the test kills it."""
    fired = threading.Event()

    def answer(key, attempt):
        if fired.is_set() or condition(key):
            fired.set()
            return ("sleep", 120)
        return "ok"

    return answer, fired


BIG = ("--batch-size", "100")  # with big_shards
KILL_POINTS = {
    # while planning and reading: the lock is taken, no request sent yet
    "reading": ("lock", None),
    # waiting for the first doc-stage completions
    "doc generation": ("request", lambda key: "[doc]" not in key),
    # waiting for the first chunk-stage completions
    "chunk generation": ("request", lambda key: "[doc]" in key),
    # part of a shard written to logs/partial/, the rest still generating
    "writing a shard": ("request", "partial"),
    # a shard (a task) done, the next one started
    "between tasks": ("request", "summary"),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_at_any_point_then_rerun_gives_the_uninterrupted_output(point, request, tmp_path):
    big = point == "writing a shard"
    shards = request.getfixturevalue("big_shards" if big else "shards")
    reference = request.getfixturevalue("big_reference" if big else "reference")
    extra = BIG if big else ()
    out = tmp_path / "out"
    kind, condition = KILL_POINTS[point]
    if condition == "partial":
        condition = lambda key: any_file(out / "logs" / "partial")  # noqa: E731
    elif condition == "summary":
        condition = lambda key: any_file(out / "logs" / "shards")  # noqa: E731
    answer, fired = hold_when(condition or (lambda key: False))
    server = served(answer)
    process = start(*refine_args(shards, out, server, *extra))
    if kind == "lock":
        wait_for(lambda: (out / "logs" / "run.lock").exists(), process)
    else:
        wait_for(fired.is_set, process)
    if point == "doc generation":  # meanwhile, cron starts the same job again: it must leave at once
        busy = run_prox(*refine_args(shards, out, server, *extra), check=False)
        assert busy.returncode == 75 and "another prox run is using" in busy.stderr
    kill(process)
    server.close()

    done_before = {p: p.stat().st_mtime_ns for p in (out / "logs" / "shards").glob("*.json")} if out.exists() else {}
    if point == "between tasks":
        assert done_before
    if point == "writing a shard":
        assert any_file(out / "logs" / "partial")
    if out.exists() and (out / "logs" / "settings.json").exists():  # what is there is whole: no partial file
        found = verify(shards, out)
        assert found["counts"]["unexplained"] == found["counts"]["duplicated"] == 0
        assert found["counts"]["misplaced"] == 0

    healthy = served()
    run_prox(*refine_args(shards, out, healthy, *extra))  # the killed run's lock does not block
    healthy.close()
    assert outcome(out) == outcome(reference)
    assert_reconciled(shards, out)
    assert not any_file(out / "logs" / "partial")
    for summary, mtime in done_before.items():  # finished shards were not redone
        assert summary.stat().st_mtime_ns == mtime
