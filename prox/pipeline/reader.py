"""Reads input shards (parquet, jsonl, jsonl.gz) into documents, losing none.

Unlike datatrove's readers, rows with empty or unusable text are not skipped: they become
documents marked with `prox_input_error` (or with empty text), so the next steps record them.
A file that cannot be read ends its shard with a failure marker that names the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import orjson
from datatrove.data import Document, DocumentsPipeline
from datatrove.io import DataFolder, get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.logging import logger

from prox.pipeline.shards import INPUT_EXTENSIONS, LOGS_DIR, PROMPTS_DIR, OutputLayout, shard_end

_MISSING = object()


def input_folder_and_files(path: str) -> tuple[DataFolder, list[str]]:
    """The folder to read and its input files (sorted), for a folder or a single file."""
    if os.path.isfile(path):
        return get_datafolder(os.path.dirname(os.path.abspath(path))), [os.path.basename(path)]
    folder = get_datafolder(path)
    if not folder.isdir(""):
        raise FileNotFoundError(f"input {path} does not exist")
    files = sorted(f for f in folder.list_files(recursive=True) if f.endswith(INPUT_EXTENSIONS))
    if folder.isfile("stats.json") or folder.isfile(f"{LOGS_DIR}/settings.json"):  # a prox output folder
        files = [f for f in files if f.split("/", 1)[0] not in (LOGS_DIR, PROMPTS_DIR)]
    return folder, files


class ShardReader(PipelineStep):
    name = "prox shard reader"
    type = "📖 - READER"

    def __init__(self, input_path: str, output_path: str, shards: list[str] | None = None,
                 text_key: str = "text", id_key: str = "id", batch_size: int = 1000, limit: int = -1,
                 job: str = "documents"):
        """`shards`: the input files to read, relative to the input folder (default: all of them).
        `limit`: read at most this many documents per task (a preview; no shard is marked done).
        `job`: whose done shards to skip ("documents" or "prompts")."""
        super().__init__()
        self.limit = limit
        self.job = job
        self.input_path = input_path
        self.shards = shards
        self.output_path = output_path
        self.text_key = text_key
        self.id_key = id_key
        self.batch_size = batch_size

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        folder, files = input_folder_and_files(self.input_path)
        layout = OutputLayout(self.output_path, self.job)
        budget = self.limit if self.limit >= 0 else float("inf")
        for shard in (self.shards if self.shards is not None else files)[rank::world_size]:
            if layout.is_done(shard):
                self.stat_update("shards_already_done")
                continue
            if budget <= 0:
                break
            rows, complete = 0, True
            try:
                for document in self.documents_of(folder, shard):
                    if rows >= budget:
                        complete = False
                        break
                    rows += 1
                    yield document
            except Exception as error:  # any read error fails this shard only
                message = f"cannot read {folder.resolve_paths(shard)} after row {rows}: {error}"
                logger.error(message)
                self.stat_update("shards_failed")
                yield shard_end(shard, rows, failed=message)
                continue
            self.stat_update("shards_read")
            self.stat_update("documents", value=rows)
            budget -= rows
            yield shard_end(shard, rows, complete=complete)

    def documents_of(self, folder: DataFolder, shard: str) -> Iterator[Document]:
        """Every row of one input file as a document, in order; raises if the file cannot be read."""
        if shard.endswith(".parquet"):
            yield from self._read_parquet(folder, shard)
        else:
            yield from self._read_jsonl(folder, shard)

    def _read_parquet(self, folder: DataFolder, shard: str) -> Iterator[Document]:
        import pyarrow.parquet as pq

        with folder.open(shard, "rb") as file, pq.ParquetFile(file) as parquet:
            names = parquet.schema_arrow.names
            if self.text_key.split(".", 1)[0] not in names:
                raise ValueError(f"no column {self.text_key!r} (columns: {', '.join(names)}); "
                                 "name the text column with --text-key")
            index = 0
            # one row group at a time: given the whole file, pyarrow reads ahead and memory grows with it
            for group in range(parquet.num_row_groups):
                for batch in parquet.iter_batches(batch_size=self.batch_size, row_groups=[group]):
                    with self.track_time("batch"):
                        documents = [self._document(row, shard, index + i) for i, row in enumerate(batch.to_pylist())]
                    index += len(documents)
                    yield from documents

    def _read_jsonl(self, folder: DataFolder, shard: str) -> Iterator[Document]:
        with folder.open(shard, "rb", compression="infer") as file:
            index = 0
            for raw in file:
                if not raw.strip():
                    continue
                with self.track_time():
                    try:
                        row = orjson.loads(raw)
                        if not isinstance(row, dict):
                            raise ValueError(f"a JSON {type(row).__name__}, not an object")
                        document = self._document(row, shard, index)
                    except (ValueError, orjson.JSONDecodeError) as error:
                        document = self._unreadable_row(raw, shard, index, error)
                index += 1
                yield document

    def _document(self, row: dict, shard: str, index: int) -> Document:
        """A row as a document; a text key `metadata.NAME` reads the text from the metadata."""
        in_metadata = self.text_key.startswith("metadata.")
        text = _MISSING if in_metadata else row.pop(self.text_key, _MISSING)
        raw_id = row.pop(self.id_key, None)
        metadata = row.pop("metadata", None)
        if isinstance(metadata, dict):
            metadata = dict(metadata)
        else:
            metadata = {} if metadata is None else {"metadata": metadata}
        metadata.update(row)
        if in_metadata:
            text = metadata.get(self.text_key.removeprefix("metadata."), _MISSING)
        error = None
        if text is _MISSING:
            error, text = f"row has no {self.text_key!r} field", ""
        elif text is None:
            error, text = f"{self.text_key!r} is null", ""
        elif not isinstance(text, str):
            error, text = f"{self.text_key!r} is a {type(text).__name__}, not a string", repr(text)
        metadata.update(prox_shard=shard, prox_row=index, prox_input_error=error)
        doc_id = str(raw_id) if raw_id not in (None, "") else f"{shard}/{index}"
        return Document(text=text, id=doc_id, metadata=metadata)

    def _unreadable_row(self, raw: bytes, shard: str, index: int, error: Exception) -> Document:
        """A line that is not valid UTF-8 JSON: kept, as text, for the exclusions."""
        text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        metadata = {"prox_shard": shard, "prox_row": index, "prox_input_error": f"unreadable line: {error}"}
        return Document(text=text, id=f"{shard}/{index}", metadata=metadata)
