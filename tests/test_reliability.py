"""Nothing is lost: runs killed with SIGKILL, a second run on a busy output, changed settings, and
engines that fail. The real CLI in subprocesses, the real HTTP engine against a local server that
misbehaves on purpose, and every outcome checked with `prox verify`."""

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from completion_server import FakeServer
from conftest import ROOT, read_output, run_prox

from prox.engines import BUNDLED_TOKENIZER

pytestmark = pytest.mark.slow
DOCUMENTS = ROOT / "samples" / "web-documents.jsonl"


def program_for(key: str) -> str:
    """What the server's "model" writes: a doc program from the prompt ids (a few documents are
    dropped), a chunk program that removes the first line of chunks of three lines or more."""
    if "[doc]" in key:
        numbers = re.findall(r"^\[(\d+)\]", key.split("[doc]", 1)[1], flags=re.MULTILINE)
        return f"remove_lines(line_start={numbers[0]}, line_end={numbers[0]})" if len(numbers) > 2 else "keep_chunk()"
    return "drop_doc()" if zlib.crc32(key.encode()) % 5 == 0 else "keep_doc()"


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("shards")
    rows = [orjson.loads(line) for line in DOCUMENTS.read_bytes().splitlines()]
    rows = [{"id": r["id"], "text": r["text"]} for r in rows]
    for index in range(3):
        pq.write_table(pa.Table.from_pylist(rows[index::3]), folder / f"shard-{index}.parquet")
    return folder


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


def refine_args(shards: Path, out: Path, server: FakeServer, *extra: str) -> tuple[str, ...]:
    return ("refine", "--input", str(shards), "--output", str(out), "--engine", "openai", "--endpoint", server.url,
            "--doc-model", BUNDLED_TOKENIZER, "--chunk-model", BUNDLED_TOKENIZER, "--batch-size", "3",
            "--tasks", "3", "--retries", "1", *extra)


def served(answer=lambda key, attempt: "ok") -> FakeServer:
    return FakeServer(answer=answer, reply_text=program_for)


def outcome(out: Path) -> dict:
    kept, dropped = read_output(out)
    return {row["id"]: (row["text"], row["metadata"]["prox_action"], row["metadata"]["doc_program"],
                        row["metadata"]["chunk_program"]) for row in kept + dropped}


def verify(shards: Path, out: Path) -> dict:
    result = run_prox("verify", str(shards), str(out), "--json", check=False)
    return orjson.loads(result.stdout) | {"exit": result.returncode}


def assert_reconciled(shards: Path, out: Path) -> None:
    found = verify(shards, out)
    assert found["exit"] == 0 and found["ok"], found


def uninterrupted(shards: Path, out: Path, *extra: str) -> Path:
    server = served()
    run_prox(*refine_args(shards, out, server, *extra))
    server.close()
    assert_reconciled(shards, out)
    return out


@pytest.fixture(scope="module")
def reference(shards, tmp_path_factory) -> Path:
    return uninterrupted(shards, tmp_path_factory.mktemp("reference") / "out")


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


def any_file(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))


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


def test_changed_settings_are_refused_naming_them_unless_overwrite(shards, reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    server = served()
    changed = run_prox(*refine_args(shards, out, server, "--threshold-2", "0.9"), check=False)
    assert changed.returncode == 1 and "policy.threshold_2: 0.95 -> 0.9" in changed.stderr
    stage = run_prox(*refine_args(shards, out, server, "--stage", "doc"), check=False)
    assert stage.returncode == 1 and "stages: ['doc', 'chunk'] -> ['doc']" in stage.stderr
    assert outcome(out) == outcome(reference)  # refused runs touch nothing
    faster = run_prox(*refine_args(shards, out, server, "--concurrency", "2"))  # speed settings may change
    assert "nothing to do" in faster.stdout
    run_prox(*refine_args(shards, out, server, "--stage", "doc", "--overwrite"))
    server.close()
    assert_reconciled(shards, out)
    assert all(chunk is None for _, _, _, chunk in outcome(out).values())


def test_a_flaky_server_is_retried_and_nothing_changes(shards, reference, tmp_path):
    """Some requests first get a 500 or a hung-up connection; their retries succeed."""
    def answer(key, attempt):
        if attempt == 1 and zlib.crc32(key.encode()) % 3 == 0:
            return ("status", 500, {"error": {"message": "overloaded"}}) if len(key) % 2 else "close"
        return "ok"

    server = served(answer)
    run_prox(*refine_args(shards, tmp_path / "out", server, "--batch-size", "8"))
    assert max(server.attempts.values()) == 2
    server.close()
    assert outcome(tmp_path / "out") == outcome(reference)
    assert_reconciled(shards, tmp_path / "out")


@pytest.mark.parametrize("fault", ["500s", "timeouts"])
def test_a_server_that_goes_down_fails_the_task_cleanly_and_a_rerun_resumes(fault, shards, reference, tmp_path):
    """After the first shard the server only fails (500s) or never answers in time: retries run out,
    the task stops before its shard is done, the exit status says so, and a rerun finishes the job."""
    out = tmp_path / "out"

    def answer(key, attempt):
        if not any_file(out / "logs" / "shards"):
            return "ok"
        return ("status", 503, {"error": {"message": "down"}}) if fault == "500s" else ("sleep", 3)

    server = served(answer)
    failed = run_prox(*refine_args(shards, out, server, "--request-timeout", "0.5"), check=False)
    server.close()
    assert failed.returncode != 0
    done = list((out / "logs" / "shards").glob("*.json"))
    assert 1 <= len(done) < 3
    found = verify(shards, out)
    assert found["exit"] == 1 and found["counts"]["unexplained"] == found["counts"]["duplicated"] == 0
    assert not any_file(out / "logs" / "partial")  # half a shard is never left as if done

    healthy = served()
    run_prox(*refine_args(shards, out, healthy))
    healthy.close()
    assert outcome(out) == outcome(reference)
    assert_reconciled(shards, out)


def test_requests_the_server_rejects_are_recorded_and_the_documents_kept(shards, tmp_path):
    def answer(key, attempt):
        if "[doc]" not in key and zlib.crc32(key.encode()) % 4 == 1:
            return ("status", 400, {"error": {"message": "This model's maximum context length is 2048 tokens"}})
        return "ok"

    server = served(answer)
    run_prox(*refine_args(shards, tmp_path / "out", server))
    server.close()
    kept, _ = read_output(tmp_path / "out")
    rejected = [row for row in kept if row["metadata"]["prox_reason"] == "engine_error"]
    assert rejected and all("maximum context length" in row["metadata"]["prox_engine_error"] for row in rejected)
    assert all(row["text"] == row["metadata"].get("raw_content", row["text"]) for row in rejected)
    assert_reconciled(shards, tmp_path / "out")
