"""Progress of each stage: on a terminal, one line per stage that updates (documents done, rate,
time left; tqdm); elsewhere (cron, Slurm, a log file) a plain log line after every batch.

Live lines are drawn only when every task runs in this process, one after the other: the lines
belong to the run, not to a task, so each stage's line goes on from task to task. While they are
drawn, whatever else writes to stderr (the task logs) is printed above them.
"""

from __future__ import annotations

import contextlib
import gzip
import sys
import time
from collections.abc import Callable, Iterator

from datatrove.io import DataFolder
from datatrove.utils.logging import logger

from prox.pipeline.input_files import is_local

COUNT_LIMIT_BYTES = 256 * 2**20  # local jsonl inputs up to this size are counted for the time left
_LIVE: dict = {"on": False, "total": None, "bars": {}, "stream": None}


class _AboveBars:
    """stderr while bars are drawn: each write goes above the bars, which are drawn again below it."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        from tqdm import tqdm

        tqdm.write(text, file=self.stream, end="")
        return len(text)

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


@contextlib.contextmanager
def live_progress(total: Callable[[], int | None]) -> Iterator[None]:
    """Within it, stages draw live lines; `total()` gives the documents to do (None: unknown), asked
    when the first line is drawn, so that it is not counted when nothing runs."""
    stderr = sys.stderr
    _LIVE.update(on=True, total=total, bars={}, stream=stderr)
    sys.stderr = _AboveBars(stderr)
    try:
        yield
    finally:
        sys.stderr = stderr
        for bar in _LIVE["bars"].values():
            bar.close()
        _LIVE.update(on=False, total=None, bars={}, stream=None)


def shows_live_progress(executor: str, workers: int, processes: int) -> bool:
    """Live lines when the tasks run here, one after the other in this process, and stderr is a terminal."""
    return executor == "local" and workers == 1 and processes <= 1 and sys.stderr.isatty()


def count_rows(folder: DataFolder, shards: list[str]) -> int | None:
    """The rows of `shards`: from parquet footers, and by counting the lines of local jsonl files
    when they are small enough (COUNT_LIMIT_BYTES in all); None when that would take long."""
    import pyarrow.parquet as pq

    total, text_bytes = 0, 0
    for shard in shards:
        if shard.endswith(".parquet"):
            with folder.open(shard, "rb") as file:
                total += pq.ParquetFile(file).metadata.num_rows
            continue
        if not is_local(folder) or not shard.endswith((".jsonl", ".jsonl.gz", ".json.gz")):
            return None
        text_bytes += folder.size(shard)
        if text_bytes > COUNT_LIMIT_BYTES:
            return None
        path = folder.resolve_paths(shard)
        with (gzip.open(path, "rb") if shard.endswith(".gz") else open(path, "rb")) as file:
            total += sum(block.count(b"\n") for block in iter(lambda: file.read(1 << 20), b""))
    return total


class StageProgress:
    """Documents done at one stage, their rate and the time left; prompt tokens per second."""

    def __init__(self, stage: str):
        self.stage, self.started, self.documents, self.requested, self.tokens = stage, time.perf_counter(), 0, 0, 0
        self.bar = None
        if _LIVE["on"]:
            from tqdm import tqdm

            if callable(_LIVE["total"]):
                _LIVE["total"] = _LIVE["total"]()
            bars = _LIVE["bars"]
            if stage not in bars:
                bars[stage] = tqdm(total=_LIVE["total"], desc=f"{stage} stage", unit=" docs", position=len(bars),
                                   dynamic_ncols=True, file=_LIVE["stream"], smoothing=0.1)
            self.bar = bars[stage]

    def add(self, documents: int, requested: int, tokens: int) -> None:
        """`documents` passed the stage, `requested` of them sent prompts of `tokens` tokens."""
        self.documents += documents
        self.requested += requested
        self.tokens += tokens
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        if self.bar is not None:
            if self.tokens:
                self.bar.set_postfix_str(f"{self.tokens / elapsed:,.0f} prompt tokens/s", refresh=False)
            self.bar.update(documents)
            return
        logger.info(f"{self.stage} stage: {self.documents} documents ({self.requested} with requests), "
                    f"{self.tokens} prompt tokens, {self.documents / elapsed:.1f} docs/s, "
                    f"{self.tokens / elapsed:.0f} prompt tokens/s")
