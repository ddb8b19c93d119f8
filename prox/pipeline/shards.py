"""Shards, the unit of resumable work: one input file, its output files, and its summary.

Each input file is processed whole by one task. Its output goes to partial files first; when the
shard ends they are moved into place and a summary is written to OUT/logs/shards/. A shard with a
summary is done and never redone, whatever the number of tasks; anything else is redone from the
start, so an interrupted run never leaves half a shard as output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import orjson
from datatrove.data import Document
from datatrove.io import DataFolder, get_datafolder

from prox.pipeline.output_names import EXCLUDED_DIR, LOGS_DIR, PROMPTS_DIR, NameBook, shard_stem

NAMES_FILE = f"{LOGS_DIR}/names.json"


@dataclass(slots=True)
class ShardEnd(Document):
    """Marker that follows the last document of a shard through the pipeline.

    Steps pass it on after every document of its shard. `failed` names a read error: the shard's
    documents already passed on are then discarded, and the shard is retried on the next run.
    `complete` is False when a --limit stopped reading early: the output is kept as a preview,
    but the shard is not done.
    """

    shard: str = ""
    rows: int = 0
    failed: str | None = None
    complete: bool = True


def shard_end(shard: str, rows: int, failed: str | None = None, complete: bool = True) -> ShardEnd:
    return ShardEnd(text="", id=f"end-of-shard:{shard}", shard=shard, rows=rows, failed=failed, complete=complete)


class OutputLayout:
    """Where everything goes under the output folder.

    `job` separates the bookkeeping of runs that write different things: "documents" (refine and
    apply), "prompts" (refine --dry-run) and "annotations" (annotate) mark their shards done
    independently. Each shard's
    outputs carry its name from OUT/logs/names.json (see output_names); a shard not named there yet
    is given the name a run would give it.
    """

    KIND_DIRS = {"kept": "", "excluded": f"{EXCLUDED_DIR}/", "prompts": f"{PROMPTS_DIR}/",
                 "doc-train": "doc/train/", "doc-validation": "doc/validation/", "chunk-train": "chunk/train/",
                 "chunk-validation": "chunk/validation/", "refused": "refused/"}

    def __init__(self, output: str | DataFolder, job: str = "documents"):
        self.folder = output if isinstance(output, DataFolder) else get_datafolder(output)
        self.job = job
        self.summaries = self._own("shards")
        self._book: NameBook | None = None

    def _own(self, name: str) -> str:
        return name if self.job == "documents" else f"{self.job}-{name}"

    def job_file(self, name: str) -> str:
        """The job's own `name` under logs/: logs/settings.json for the documents, logs/prompts-settings.json
        for the prompts' job."""
        return f"{LOGS_DIR}/{self._own(name)}"

    def name(self, shard: str) -> str:
        return self._names().name(shard)

    def record_names(self, shards: list[str]) -> dict[str, str]:
        """Names every shard, in sorted order, and records new names; call it holding the run's lock.
        Returns the shards whose name is not their plain one, with that name."""
        self._book = None  # read the record afresh
        before = dict(self._names().names)
        names = {shard: self.name(shard) for shard in sorted(shards)}
        if self._book.names != before:
            self.write_json(NAMES_FILE, self._book.names)
        return {shard: name for shard, name in names.items() if name != shard_stem(shard)}

    def _names(self) -> NameBook:
        if self._book is None:
            self._book = NameBook(self.read_json(NAMES_FILE) if self.folder.isfile(NAMES_FILE) else {})
        return self._book

    def part_name(self, shard: str, kind: str, part: int) -> str:
        """Output file `part` of a shard for `kind` ("kept", "excluded" or "prompts")."""
        suffix = ".parquet" if part == 0 else f".part{part}.parquet"
        return self.KIND_DIRS[kind] + self.name(shard) + suffix

    def partial_name(self, final_name: str) -> str:
        return f"{LOGS_DIR}/partial/{final_name}"

    def summary_name(self, shard: str) -> str:
        return f"{LOGS_DIR}/{self.summaries}/{self.name(shard)}.json"

    def limited_name(self, shard: str) -> str:
        return f"{LOGS_DIR}/limited-{self.summaries}/{self.name(shard)}.json"

    def failure_name(self, shard: str) -> str:
        return f"{LOGS_DIR}/failed-{self.summaries}/{self.name(shard)}.json"

    def document_files(self) -> list[str]:
        """The parquet files a run wrote its documents to (not its logs, not a dry run's prompts), sorted."""
        return sorted(f for f in self.folder.list_files(recursive=True)
                      if f.endswith(".parquet") and f.split("/", 1)[0] not in (LOGS_DIR, PROMPTS_DIR))

    def is_done(self, shard: str) -> bool:
        return self.folder.isfile(self.summary_name(shard))

    def read_json(self, name: str) -> dict:
        with self.folder.open(name, "rb") as file:
            return orjson.loads(file.read())

    def write_json(self, name: str, data: dict) -> None:
        """Writes whole or not at all: a temporary file moved into place."""
        temporary = f"{name}.tmp{os.getpid()}"
        with self.folder.open(temporary, "wb") as file:
            file.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        self.move(temporary, name)

    def move(self, source: str, destination: str) -> None:
        """Moves a file within the output folder (a rename on local disks), creating folders."""
        target = self.folder.resolve_paths(destination)
        self.folder.fs.makedirs(self.folder.fs._parent(target), exist_ok=True)
        self.folder.fs.mv(self.folder.resolve_paths(source), target)

    def remove(self, name: str) -> None:
        if self.folder.isfile(name):
            self.folder.fs.rm(self.folder.resolve_paths(name))
