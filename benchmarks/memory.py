"""Peak memory as input grows: `prox refine --dry-run` and `prox apply` on a 100 MB and a 1 GB parquet
input built from the bundled real documents (with unique ids), peak RSS side by side.

Usage: python benchmarks/memory.py [SIZES_MB]   (default 100,1000); writes bench-out/memory.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from bench_report import machine, save

from prox.engines import BUNDLED_TOKENIZER

ROOT = Path(__file__).parents[1]
TOKENIZER = BUNDLED_TOKENIZER  # the published refiners' tokenizer, shipped with prox
ROWS_PER_GROUP = 5000  # row groups of a few MB, as datasets on the hub are written


def build_input(path: Path, megabytes: int) -> int:
    """A parquet file of about `megabytes` of text; returns its number of documents."""
    rows = [json.loads(line) for line in (ROOT / "samples" / "cc-programs.jsonl").read_text().splitlines()]
    schema = pa.schema([("id", pa.string()), ("text", pa.string()),
                        ("metadata", pa.struct([("doc_program", pa.string()), ("chunk_program", pa.string())]))])
    written, count = 0, 0
    # no compression, no dictionary: the file is as large as its text, although the texts repeat
    with pq.ParquetWriter(path, schema, compression="none", use_dictionary=False) as writer:
        while written < megabytes * 1_000_000:
            group = []
            for _ in range(ROWS_PER_GROUP):
                row = rows[count % len(rows)]
                group.append({"id": f"doc-{count}", "text": row["text"], "metadata": {
                    "doc_program": row["metadata"]["doc_program"], "chunk_program": row["metadata"]["chunk_program"]}})
                written += len(row["text"])
                count += 1
            writer.write_table(pa.Table.from_pylist(group, schema=schema))
    return count


def peak_rss_mib(arguments: list[str]) -> tuple[float, float]:
    """Runs `prox ARGUMENTS` in a child of a fresh process; (peak RSS of that run in MiB, seconds)."""
    probe = ("import resource, subprocess, sys, time; start = time.time(); "
             "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.time() - start)")
    output = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "prox", *arguments],
                            capture_output=True, text=True, check=True).stdout.split()
    return int(output[0]) / 1024, float(output[1])


def main() -> None:
    sizes = [int(s) for s in (sys.argv[1] if len(sys.argv) > 1 else "100,1000").split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as work:
        for megabytes in sizes:
            folder = Path(work) / f"in-{megabytes}"
            folder.mkdir()
            documents = build_input(folder / "shard.parquet", megabytes)
            dry = peak_rss_mib(["refine", "--input", str(folder), "--output", f"{work}/dry-{megabytes}",
                                "--doc-model", str(TOKENIZER), "--chunk-model", str(TOKENIZER), "--dry-run"])
            applied = peak_rss_mib(["apply", "--input", str(folder), "--output", f"{work}/apply-{megabytes}"])
            results[megabytes] = {"documents": documents, "file_mb": (folder / "shard.parquet").stat().st_size / 1e6,
                                  "dry_run_peak_mib": dry[0], "dry_run_seconds": dry[1],
                                  "apply_peak_mib": applied[0], "apply_seconds": applied[1]}
            print(f"{megabytes} MB of text: {results[megabytes]}", flush=True)
    print(f"\npeak RSS (MiB) on {machine()}")
    print(f"{'input text':<12}{'documents':>11}{'dry run':>10}{'apply':>10}")
    for megabytes, r in results.items():
        print(f"{megabytes:>7} MB  {r['documents']:>11}{r['dry_run_peak_mib']:>10.0f}{r['apply_peak_mib']:>10.0f}")
    save("memory", {"results": results})


if __name__ == "__main__":
    main()
