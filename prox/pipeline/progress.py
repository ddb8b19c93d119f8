"""Progress of each stage: on a terminal, one line per stage that updates (documents done, rate,
time left; tqdm); elsewhere (cron, Slurm, a log file) a plain log line after every batch."""

from __future__ import annotations

import contextlib
import gzip
import sys
import time
from collections.abc import Iterator

from datatrove.io import DataFolder
from datatrove.utils.logging import logger

from prox.pipeline.input_files import is_local

_LIVE: dict = {"on": False, "total": None, "stages": 0}


@contextlib.contextmanager
def live_progress(total: int | None) -> Iterator[None]:
    """Within it, stages of this process draw live lines; `total`: the documents to do (None: unknown)."""
    _LIVE.update(on=True, total=total, stages=0)
    try:
        yield
    finally:
        _LIVE.update(on=False, total=None, stages=0)


def shows_live_progress(executor: str, workers: int, processes: int) -> bool:
    """Live lines when the tasks run here, one after the other in this process, and stderr is a terminal."""
    return executor == "local" and workers == 1 and processes <= 1 and sys.stderr.isatty()


def count_rows(folder: DataFolder, shards: list[str]) -> int | None:
    """The rows of `shards`: from parquet footers, or by counting the lines of local jsonl files;
    None where that would mean reading remote files."""
    import pyarrow.parquet as pq

    total = 0
    for shard in shards:
        if shard.endswith(".parquet"):
            with folder.open(shard, "rb") as file:
                total += pq.ParquetFile(file).metadata.num_rows
        elif is_local(folder):
            path = folder.resolve_paths(shard)
            with (gzip.open(path, "rb") if shard.endswith(".gz") else open(path, "rb")) as file:
                total += sum(block.count(b"\n") for block in iter(lambda: file.read(1 << 20), b""))
        else:
            return None
    return total


class StageProgress:
    """Documents done at one stage, their rate and the time left; prompt tokens per second."""

    def __init__(self, stage: str):
        self.stage, self.started, self.documents, self.requested, self.tokens = stage, time.perf_counter(), 0, 0, 0
        self.bar = None
        if _LIVE["on"]:
            from tqdm import tqdm

            self.bar = tqdm(total=_LIVE["total"], desc=f"{stage} stage", unit=" docs", position=_LIVE["stages"],
                            dynamic_ncols=True, file=sys.stderr, smoothing=0.1)
            _LIVE["stages"] += 1

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

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
