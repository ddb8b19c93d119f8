"""How long `prox report` takes on a large run, and its peak memory.

Builds a run of SIZE_MB (argument, default 1000) of real output rows: `make demo`'s refinement of the
bundled pages (rules engine, --keep-raw), its rows repeated under new ids into shards of about 100 MB,
with the demo's stats.json scaled to match. Then times `prox report` on it (the same calls, in this
process) and reads the peak resident memory. Prints a summary and writes bench-out/report.json.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from bench_report import machine, save

ROOT = Path(__file__).parents[1]
SHARD_MB = 100
# the report's calls in a fresh process, so that its peak memory is the report's alone
MEASURE = """
import resource, sys, time, orjson
from prox.reports.comparison import compare
from prox.reports.page import render
from prox.reports.run_reader import read_stats, run_figures, sample_documents
run = sys.argv[1]
tick = time.perf_counter()
page = render(run, read_stats(run), run_figures(run), sample_documents(run, 20),
              sample_documents(run, 1000, row_groups=16))
seconds = time.perf_counter() - tick
tick = time.perf_counter()
compare(run, run)
print(orjson.dumps([seconds, time.perf_counter() - tick, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                    len(page) // 1024]).decode())
"""


def build_run(folder: Path, size_mb: int) -> int:
    demo = folder / "demo"
    subprocess.run([sys.executable, "-m", "prox", "refine", "--engine", "rules", "--keep-raw", "--input",
                    str(ROOT / "samples" / "web-documents.jsonl"), "--output", str(demo)], check=True,
                   capture_output=True)
    kept, excluded = pq.read_table(demo / "web-documents.parquet"), pq.read_table(demo / "excluded")
    run = folder / "run"
    (run / "excluded").mkdir(parents=True)
    per_copy = (kept.nbytes + excluded.nbytes) / 1e6
    copies_per_shard = max(1, int(SHARD_MB / per_copy))
    shards = max(1, round(size_mb / SHARD_MB))
    for shard in range(shards):
        for table, target in ((kept, run / f"shard-{shard:03d}.parquet"), (excluded, run / "excluded" /
                                                                          f"shard-{shard:03d}.parquet")):
            parts = [table.set_column(0, "id", pa.array([f"{shard}-{c}-{i}" for i in table.column("id").to_pylist()]))
                     for c in range(copies_per_shard)]
            # no compression, no dictionary: repeated rows must not shrink, so the files are the size asked
            pq.write_table(pa.concat_tables(parts), target, compression="none", use_dictionary=False,
                           row_group_size=10_000)
    stats = orjson.loads((demo / "stats.json").read_bytes())
    factor = shards * copies_per_shard
    for key in ("input", "kept", "modified", "dropped", "errors", "words_before", "words_after"):
        stats[key] *= factor
    stats["dropped_by_reason"] = {k: v * factor for k, v in stats["dropped_by_reason"].items()}
    (run / "stats.json").write_bytes(orjson.dumps(stats))
    return stats["input"]


def main() -> None:
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    work = Path(tempfile.mkdtemp(prefix="prox-bench-report-"))
    documents = build_run(work, size_mb)
    run = str(work / "run")
    on_disk = sum(p.stat().st_size for p in (work / "run").rglob("*.parquet")) / 1e6
    tick = time.perf_counter()
    subprocess.run([sys.executable, "-m", "prox", "report", run, "--compare", run], check=True, capture_output=True)
    cli_seconds = time.perf_counter() - tick
    measured = subprocess.run([sys.executable, "-c", MEASURE, run], check=True, capture_output=True, text=True)
    seconds, compare_seconds, peak_mb, page_kb = orjson.loads(measured.stdout)
    figures = {"machine": machine(), "documents": documents, "parquet_mb": round(on_disk),
               "report_s": round(seconds, 1), "compare_s": round(compare_seconds, 1), "page_kb": page_kb,
               "peak_rss_mb": round(peak_mb), "cli_with_compare_s": round(cli_seconds, 1)}
    save("report", figures)
    shutil.rmtree(work)
    print(f"\n{figures['machine']}")
    print(f"a run of {documents:,} documents, {on_disk:.0f} MB of parquet: report in {seconds:.1f} s ({page_kb} KB "
          f"page), compare with itself in {compare_seconds:.1f} s, peak memory {peak_mb:.0f} MB; `prox report "
          f"--compare` from the command line {cli_seconds:.1f} s")


if __name__ == "__main__":
    main()
