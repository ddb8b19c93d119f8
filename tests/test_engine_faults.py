"""Failing engines and changed settings: a flaky server is retried, a server that goes down fails
the task cleanly and a rerun resumes, rejected requests are recorded per document, and a rerun with
other settings is refused. The real CLI, the real HTTP engine, a local server, `prox verify`."""

import shutil
import zlib
from pathlib import Path

import pytest
from conftest import read_output, run_prox
from served_refine import any_file, assert_reconciled, outcome, refine_args, served, uninterrupted, verify, write_shards

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return write_shards(tmp_path_factory.mktemp("shards"))


@pytest.fixture(scope="module")
def reference(shards, tmp_path_factory) -> Path:
    """An uninterrupted run."""
    return uninterrupted(shards, tmp_path_factory.mktemp("reference") / "out")


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
    failed = run_prox(*refine_args(shards, out, server, "--request-timeout", "0.5", "--retries", "2"), check=False)
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
