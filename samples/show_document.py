"""Prints the refined document of a prox output that lost the most words, before and after, with
its programs (used by `make demo`; the run must keep the input text: `--keep-raw`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.parquet as pq


def main(output: str) -> None:
    rows = [row for path in sorted(Path(output).glob("*.parquet")) for row in pq.read_table(path).to_pylist()]
    modified = [row for row in rows if row["metadata"]["prox_action"] == "modified"]
    if not modified:
        print("no document was modified")
        return
    row = max(modified, key=lambda r: r["metadata"]["prox_words_before"] - r["metadata"]["prox_words_after"])
    record = row["metadata"]
    print(f"\n=== one document: {row['id']}")
    print(f"--- doc program\n{record['doc_program']}")
    print(f"--- chunk program\n{record['chunk_program']}")
    print(f"--- before ({record['prox_words_before']} words)\n{record['raw_content'][:1500]}")
    print(f"--- after ({record['prox_words_after']} words, {record['prox_reason']})\n{row['text'][:1500]}")


if __name__ == "__main__":
    main(sys.argv[1])
