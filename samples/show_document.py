"""Prints one refined document of a prox output next to its input (used by `make demo`)."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pyarrow.parquet as pq

SAMPLES = Path(__file__).with_name("cc-programs.jsonl")


def main(output: str) -> None:
    inputs = {row["id"]: row for row in map(orjson.loads, SAMPLES.read_bytes().splitlines())}
    rows = [row for path in sorted(Path(output).glob("*.parquet")) for row in pq.read_table(path).to_pylist()]
    modified = [row for row in rows if row["metadata"]["prox_action"] == "modified"]
    row = max(modified, key=lambda r: r["metadata"]["prox_words_before"] - r["metadata"]["prox_words_after"])
    record = row["metadata"]
    print(f"\n=== one document: {row['id']}")
    print(f"--- chunk program\n{inputs[row['id']]['metadata']['chunk_program']}")
    print(f"--- before ({record['prox_words_before']} words)\n{inputs[row['id']]['text'][:1200]}")
    print(f"--- after ({record['prox_words_after']} words, {record['prox_reason']})\n{row['text'][:1200]}")


if __name__ == "__main__":
    main(sys.argv[1])
