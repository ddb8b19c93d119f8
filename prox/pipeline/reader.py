"""Reads input shards (parquet, jsonl, jsonl.gz) into documents, losing none and changing no id.

Unlike datatrove's readers, rows with empty or unusable text are not skipped: they become
documents marked with `prox_input_error` (or with empty text), so the next steps record them.
A file that cannot be read ends its shard with a failure marker that names the file.

Ids come out as the input wrote them: a jsonl number keeps its digits (a JSON parser would turn
an integer beyond 64 bits into a float), binary ids and text are decoded as UTF-8, and a jsonl
file may start with a UTF-8 byte order mark (RFC 8259, 8.1). A row without a usable id is named
FILE/ROW; an id that cannot be written as text (a list, invalid UTF-8) is the row's recorded error.
A byte order mark may also start any line: files joined with `cat` carry each file's own.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator

import orjson
from datatrove.data import Document, DocumentsPipeline
from datatrove.io import DataFolder
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.logging import logger

from prox.pipeline.input_files import dangling_target, input_folder, list_input
from prox.pipeline.shards import OutputLayout, shard_end

_MISSING = object()


def id_text(value) -> tuple[str | None, str | None]:
    """(the id as text, or None for none; an error when the value cannot be an id)."""
    if value is None or value == "" or value == b"":
        return None, None
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return None, "the id is binary and not valid UTF-8"
    if isinstance(value, str):
        return value, None
    if isinstance(value, bool):
        return ("true" if value else "false"), None
    if isinstance(value, (dict, list, tuple)):
        return None, f"the id is a {type(value).__name__}, not a string or a number"
    return str(value), None


def _literal_numbers(raw: str | bytes) -> object:
    """A JSON line parsed with every number kept as the text it is written as; ValueError if it
    cannot be parsed (also for nesting deeper than Python's recursion allows)."""
    try:
        return json.loads(raw, parse_int=str, parse_float=str)
    except RecursionError as error:
        raise ValueError("nested too deeply") from error


class ShardReader(PipelineStep):
    name = "prox shard reader"
    type = "📖 - READER"

    def __init__(self, input_path: str, output_path: str, shards: list[str] | None = None,
                 text_key: str = "text", id_key: str = "id", batch_size: int = 1000, limit: int = -1,
                 job: str = "documents"):
        """`shards`: the input files to read, relative to the input folder (default: all of them).
        `limit`: read at most this many documents per task (a preview; no shard is marked done).
        `job`: whose done shards to skip ("documents", "prompts" or "annotations")."""
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
        folder = input_folder(self.input_path)
        layout = OutputLayout(self.output_path, self.job)
        budget = self.limit if self.limit >= 0 else float("inf")
        shards = self.shards if self.shards is not None else list_input(self.input_path).files
        for shard in shards[rank::world_size]:
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
                target = dangling_target(folder, shard)
                reason = f"it is a symlink to {target}, which does not exist" if target else error
                message = f"cannot read {folder.resolve_paths(shard)} after row {rows}: {reason}"
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
                raw = raw.removeprefix(codecs.BOM_UTF8)  # at a file's start, or a line's in files joined by cat
                if not raw.strip():
                    continue
                with self.track_time():
                    try:
                        row = orjson.loads(raw)
                        if not isinstance(row, dict):
                            raise ValueError(f"a JSON {type(row).__name__}, not an object")
                        raw_id = row.get(self.id_key)
                        if isinstance(raw_id, float) or raw_id == 0 and type(raw_id) is int:  # -0, 1e5, 2**70
                            row[self.id_key] = _literal_numbers(raw)[self.id_key]
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
        elif isinstance(text, bytes):  # a binary column, as many exported data sets have
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as decoding:
                error = f"{self.text_key!r} is binary and not valid UTF-8 ({decoding.reason} at byte {decoding.start})"
                text = text.decode("utf-8", errors="backslashreplace")
        elif not isinstance(text, str):
            error, text = f"{self.text_key!r} is a {type(text).__name__}, not a string", repr(text)
        doc_id, id_error = id_text(raw_id)
        metadata.update(prox_shard=shard, prox_row=index, prox_input_error=error or id_error)
        return Document(text=text, id=doc_id or f"{shard}/{index}", metadata=metadata)

    def _unreadable_row(self, raw: bytes, shard: str, index: int, error: Exception) -> Document:
        """A line that is not valid UTF-8 JSON: kept, as text, for the exclusions, under its own id when
        that part of the line can be read."""
        text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        try:
            row = _literal_numbers(raw.decode("utf-8", errors="surrogateescape"))
        except ValueError:
            row = None
        doc_id, _ = id_text(row.get(self.id_key)) if isinstance(row, dict) else (None, None)
        try:
            if doc_id is not None:
                doc_id.encode("utf-8")  # only this lenient parse lets a lone surrogate through
        except UnicodeEncodeError:
            doc_id = None
        metadata = {"prox_shard": shard, "prox_row": index, "prox_input_error": f"unreadable line: {error}"}
        return Document(text=text, id=doc_id or f"{shard}/{index}", metadata=metadata)
