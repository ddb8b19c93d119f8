"""`prox refine --engine openai` against the local completions server that answers with ProX
programs: the runs that the crash-safety and engine-fault tests start, kill, rerun and compare."""

import re
import zlib
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from completion_server import FakeServer
from conftest import ROOT, read_output, run_prox

from prox.engines import BUNDLED_TOKENIZER, load_tokenizer

DOCUMENTS = ROOT / "samples" / "web-documents.jsonl"


def program_for(key: str) -> str:
    """What the server's "model" writes: a doc program from the prompt (a few documents are dropped),
    a chunk program that removes the first line of chunks of three lines or more."""
    if "[doc]" in key:
        numbers = re.findall(r"^\[(\d+)\]", key.split("[doc]", 1)[1], flags=re.MULTILINE)
        return f"remove_lines(line_start={numbers[0]}, line_end={numbers[0]})" if len(numbers) > 2 else "keep_chunk()"
    return "drop_doc()" if zlib.crc32(key.encode()) % 5 == 0 else "keep_doc()"


def write_shards(folder: Path) -> Path:
    """The bundled web documents in three parquet shards."""
    rows = [orjson.loads(line) for line in DOCUMENTS.read_bytes().splitlines()]
    rows = [{"id": r["id"], "text": r["text"]} for r in rows]
    for index in range(3):
        pq.write_table(pa.Table.from_pylist(rows[index::3]), folder / f"shard-{index}.parquet")
    return folder


def refine_args(shards: Path, out: Path, server: FakeServer, *extra: str) -> tuple[str, ...]:
    return ("refine", "--input", str(shards), "--output", str(out), "--engine", "openai", "--endpoint", server.url,
            "--doc-model", BUNDLED_TOKENIZER, "--chunk-model", BUNDLED_TOKENIZER, "--batch-size", "3",
            "--tasks", "3", "--retries", "1", *extra)


def served(answer=lambda key, attempt: "ok") -> FakeServer:
    """The server, reading id prompts as a model would: decoded with the refiners' tokenizer."""
    tokenizer = load_tokenizer(BUNDLED_TOKENIZER)
    return FakeServer(answer=answer, reply_text=program_for, read_ids=tokenizer.decode)


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


def any_file(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))
