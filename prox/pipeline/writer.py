"""Pipeline step: writes each shard's output files, whole or not at all.

Documents: kept and modified ones to OUT/, dropped ones to OUT/excluded/. Prompts (a dry run):
the prompts attached to each document to OUT/prompts/. Annotations (prox annotate): each stage's
examples to DATA/doc|chunk/train|validation/, refused answers to DATA/refused/. A shard is
written to partial files under OUT/logs/partial/ and moved into place only when it ends, so a
killed run never leaves half a shard where output is read. Files roll over to a new part when a
batch's input metadata cannot share the file's schema.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from prox.pipeline.arrow_rows import annotations_to_table, documents_to_table, prompts_to_table
from prox.pipeline.shards import OutputLayout, ShardEnd


@dataclass
class _Part:
    name: str  # final name, relative to the output folder
    file: object
    writer: pq.ParquetWriter | None


class _Destination:
    """The part files of one shard for one kind of output, with their pending rows."""

    def __init__(self, layout: OutputLayout, shard: str, kind: str, to_table: Callable[[list], pa.Table],
                 compression: str):
        self.layout, self.shard, self.kind, self.to_table, self.compression = layout, shard, kind, to_table, compression
        self.pending: list = []
        self.parts: list[_Part] = []
        self.schema: pa.Schema | None = None

    def flush(self) -> None:
        if not self.pending:
            return
        table = self.to_table(self.pending)
        self.pending = []
        if self.schema is not None:
            unified = pa.unify_schemas([self.schema, table.schema], promote_options="permissive")
            if unified.equals(self.schema):
                table = table.cast(self.schema)
            else:
                self._close_part()
                self.schema = None
        if self.schema is None:
            self._open_part(table.schema)
        self.parts[-1].writer.write_table(table)

    def _open_part(self, schema: pa.Schema) -> None:
        name = self.layout.part_name(self.shard, self.kind, len(self.parts))
        file = self.layout.folder.open(self.layout.partial_name(name), "wb")
        self.parts.append(_Part(name, file, pq.ParquetWriter(file, schema, compression=self.compression)))
        self.schema = schema

    def _close_part(self) -> None:
        if self.parts and self.parts[-1].writer is not None:
            self.parts[-1].writer.close()
            self.parts[-1].file.close()
            self.parts[-1].writer = None

    def close(self) -> list[str]:
        self.flush()
        self._close_part()
        return [part.name for part in self.parts]


def _document_rows(document: Document) -> list[tuple[str, list]]:
    return [("excluded" if document.metadata["prox_action"] == "dropped" else "kept", [document])]


def _prompt_rows(document: Document) -> list[tuple[str, list]]:
    return [("prompts", document.metadata.get("prox_prompts", []))]


def _annotation_rows(document: Document) -> list[tuple[str, list]]:
    return [(kind, [row]) for kind, row in document.metadata.get("prox_annotation_rows", [])]


@dataclass(frozen=True)
class _Output:
    kinds: tuple[str, ...]  # the output files of a shard
    rows_of: Callable[[Document], list[tuple[str, list]]]  # a document's rows, by kind
    to_table: Callable[[str, list], pa.Table]  # (kind, rows) to a table


OUTPUTS = {
    "documents": _Output(("kept", "excluded"), _document_rows, lambda _, rows: documents_to_table(rows)),
    "prompts": _Output(("prompts",), _prompt_rows, lambda _, rows: prompts_to_table(rows)),
    "annotations": _Output(("doc-train", "doc-validation", "chunk-train", "chunk-validation", "refused"),
                           _annotation_rows, annotations_to_table),
}


class ShardWriter(PipelineStep):
    name = "prox shard writer"
    type = "💽 - WRITER"

    def __init__(self, output_path: str, output: str = "documents", batch_size: int = 1000,
                 compression: str = "zstd"):
        """`output`: what to write: "documents", "prompts" (attached by BuildPrompts) or "annotations"
        (attached by AnnotateDocuments)."""
        super().__init__()
        self.output_path = output_path
        self.output = output
        self.batch_size = batch_size
        self.compression = compression

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        output = OUTPUTS[self.output]
        layout = OutputLayout(self.output_path, job=self.output)
        kinds = output.kinds
        open_shards: dict[str, dict[str, _Destination]] = {}
        for document in data:
            if isinstance(document, ShardEnd):
                destinations = open_shards.pop(document.shard, {})
                with self.track_time("shard"):
                    if document.failed:
                        self._discard(layout, destinations)
                    else:
                        self._commit(layout, document.shard, kinds, destinations)
                yield document
                continue
            shard = document.metadata["prox_shard"]
            destinations = open_shards.setdefault(shard, {
                kind: _Destination(layout, shard, kind, functools.partial(output.to_table, kind), self.compression)
                for kind in kinds})
            for kind, rows in output.rows_of(document):
                destination = destinations[kind]
                destination.pending.extend(rows)
                if len(destination.pending) >= self.batch_size:
                    with self.track_time("batch"):
                        destination.flush()
            yield document
        for destinations in open_shards.values():  # a pipeline that stopped early: nothing is committed
            self._discard(layout, destinations)

    def _commit(self, layout: OutputLayout, shard: str, kinds: tuple[str, ...], destinations: dict) -> None:
        """Replaces whatever an earlier attempt at this shard left with this attempt's files."""
        for kind in kinds:
            part = 0
            while layout.folder.isfile(name := layout.part_name(shard, kind, part)):
                layout.remove(name)
                part += 1
        for destination in destinations.values():
            for name in destination.close():
                layout.move(layout.partial_name(name), name)
                self.stat_update("files_written")

    def _discard(self, layout: OutputLayout, destinations: dict) -> None:
        for destination in destinations.values():
            for name in destination.close():
                layout.remove(layout.partial_name(name))
