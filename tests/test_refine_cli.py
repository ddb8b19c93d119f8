"""`prox refine` end to end: the real CLI in a subprocess with a tiny random Llama on CPU."""

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import read_output, run_prox, sample_rows

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Three parquet shards of short real documents, one long one (its doc prompt is longer than the
    tiny model's context), and one empty document."""
    by_length = sorted(sample_rows(), key=lambda r: len(r["text"]))
    rows = by_length[:9] + by_length[-1:]
    rows = [{"id": r["id"], "text": r["text"], "metadata": {"source": r["metadata"]["source"]}} for r in rows]
    rows.append({"id": "empty", "text": "", "metadata": {"source": "test"}})
    folder = tmp_path_factory.mktemp("shards")
    for index in range(3):
        pq.write_table(pa.Table.from_pylist(rows[index::3]), folder / f"shard-{index}.parquet")
    return folder, rows


def refine_args(shards_folder, out, model, *extra):
    return ("refine", "--engine", "transformers", "--input", str(shards_folder), "--output", str(out),
            "--doc-model", str(model), "--chunk-model", str(model), "--batch-size", "4", "--keep-raw", *extra)


@pytest.fixture(scope="module")
def full_run(shards, tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "out"
    run_prox(*refine_args(shards[0], out, tiny_model))
    return out


def by_id(out):
    kept, dropped = read_output(out)
    return {row["id"]: row for row in kept + dropped}


def test_refine_runs_both_stages_and_accounts_for_every_document(full_run, shards):
    rows = by_id(full_run)
    assert sorted(rows) == sorted(r["id"] for r in shards[1])
    assert rows["empty"]["metadata"]["prox_reason"] == "empty_text"
    for row in rows.values():
        metadata = row["metadata"]
        if row["id"] != "empty":
            assert metadata["raw_content"]
        if row["id"] != "empty" and metadata["prox_reason"] != "engine_error":
            assert isinstance(metadata["doc_program"], str) and isinstance(metadata["chunk_program"], str)
    stats = json.loads((full_run / "stats.json").read_text())
    assert stats["input"] == 11 == stats["kept"] + stats["modified"] + stats["dropped"]
    assert stats["settings"]["stages"] == ["doc", "chunk"]


def test_prompts_longer_than_the_context_are_recorded_failures_and_the_run_verifies(full_run, shards):
    """The tiny model's context is 512 tokens: long documents' doc prompts do not fit."""
    failed = [row for row in by_id(full_run).values() if row["metadata"]["prox_reason"] == "engine_error"]
    assert failed and all("does not fit the model's context of 512" in row["metadata"]["prox_engine_error"]
                          for row in failed)
    assert all(row["text"] == row["metadata"]["raw_content"] for row in failed)  # kept unchanged
    assert "OK" in run_prox("verify", str(shards[0]), str(full_run)).stdout


def test_stored_programs_rerun_by_apply_give_the_same_output(full_run, tmp_path):
    run_prox("apply", "--input", str(full_run), "--output", str(tmp_path / "again"),
             "--text-key", "metadata.raw_content")
    original, again = by_id(full_run), by_id(tmp_path / "again")
    assert again.keys() == original.keys()
    for key, row in original.items():
        assert (again[key]["text"], again[key]["metadata"]["prox_reason"]) == (
            row["text"], row["metadata"]["prox_reason"]), key


def test_killed_run_resumes_to_the_same_output(full_run, shards, tiny_model, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "prox", *refine_args(shards[0], out, tiny_model)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while not list((out / "logs" / "shards").glob("*.json")) and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done = len(list((out / "logs" / "shards").glob("*.json")))
    assert 1 <= done < 3, "the kill should land mid-run"
    result = run_prox(*refine_args(shards[0], out, tiny_model))
    assert "nothing to do" not in result.stdout
    assert by_id(out) == by_id(full_run)
    assert "nothing to do" in run_prox(*refine_args(shards[0], out, tiny_model)).stdout
    run_prox("verify", str(shards[0]), str(out))


def test_doc_stage_alone_and_config_file(shards, tiny_model, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(f"doc-model: {tiny_model}\nchunk_model: /nonexistent\nstage: chunk\nlimit: 2\n")
    run_prox("refine", "--config", str(config), "--input", str(shards[0]), "--output", str(tmp_path / "out"),
             "--stage", "doc", "--engine", "transformers")
    rows = by_id(tmp_path / "out")
    assert len(rows) == 2  # limit 2 from the file; stage doc from the line
    assert all(row["metadata"]["chunk_program"] is None for row in rows.values())
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["settings"]["stages"] == ["doc"] and stats["settings"]["limit"] == 2
    assert (stats["shards"]["done"], stats["shards"]["limited"]) == (0, 1)


def test_missing_model_gets_a_clear_message(shards, tmp_path):
    result = run_prox("refine", "--input", str(shards[0]), "--output", str(tmp_path / "out"),
                      "--doc-model", str(tmp_path / "no-such-model"), check=False)
    assert result.returncode == 1
    assert "no-such-model" in result.stderr and "--doc-model" in result.stderr


def test_without_the_hub_a_dry_run_of_the_published_models_works_and_other_models_fail_at_once(tmp_path):
    """An air-gapped machine (the hub's address refuses connections): the published refiners'
    tokenizer ships with prox, and a model that needs the hub fails with one message, no retries."""
    sample = os.path.join(os.path.dirname(__file__), "..", "samples", "web-documents.jsonl")
    environment = os.environ | {"HF_ENDPOINT": "http://127.0.0.1:9"}
    command = [sys.executable, "-m", "prox", "refine", "--dry-run", "--input", sample]
    dry = subprocess.run([*command, "--output", str(tmp_path / "dry")], env=environment, capture_output=True,
                         text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "chunk-stage prompts" in dry.stdout and "Retry" not in dry.stderr
    other = subprocess.run([*command, "--output", str(tmp_path / "other"), "--doc-model", "someorg/some-refiner"],
                           env=environment, capture_output=True, text=True, timeout=120)
    assert other.returncode == 1 and "Retry" not in other.stderr
    assert "cannot be reached" in other.stderr and "someorg/some-refiner" in other.stderr


def test_dry_run_writes_exactly_the_prompts_the_engine_receives(shards, llama_tokenizer, tmp_path):
    from conftest import TOKENIZER

    from prox.prompts import PromptBuilder, load_prompts

    out = tmp_path / "out"
    result = run_prox("refine", "--input", str(shards[0]), "--output", str(out), "--doc-model", str(TOKENIZER),
                      "--chunk-model", str(TOKENIZER), "--dry-run", "--throughput", "1000")
    rows = [r for path in sorted((out / "prompts").glob("*.parquet")) for r in pq.read_table(path).to_pylist()]
    builder = PromptBuilder(load_prompts("web"), llama_tokenizer)
    texts = {r["id"]: r["text"] for r in shards[1]}
    assert {r["id"] for r in rows} == set(texts) - {"empty"}
    for row in rows:
        if row["stage"] == "doc":
            assert row["chunk"] == 0 and row["prompt_token_ids"] == builder.doc_prompt_ids([texts[row["id"]]])[0]
        else:
            assert row["prompt"] == builder.chunk_prompts(texts[row["id"]])[row["chunk"]].text
            assert row["prompt_token_ids"] == llama_tokenizer(row["prompt"])["input_ids"]
    stats = json.loads((out / "prompts" / "stats.json").read_text())
    assert stats["input"] == 11 and stats["doc_prompts"] == 10
    assert stats["chunk_tokens"] == sum(len(r["prompt_token_ids"]) for r in rows if r["stage"] == "chunk")
    assert "chunk-stage prompts" in result.stdout and "GPU hours" in result.stdout
    assert not (out / "stats.json").exists() and not list(out.glob("*.parquet"))
