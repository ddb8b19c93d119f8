"""Pipeline step: writes kept and modified documents to OUT/, dropped ones to OUT/excluded/.

Each shard is written to partial files under OUT/logs/partial/ and moved into place only when the
shard ends, so a killed run never leaves half a shard where output is read. Files roll over to a
new part when a batch's input metadata cannot share the file's schema.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from prox.pipeline.arrow_rows import documents_to_table
from prox.pipeline.shards import OutputLayout, ShardEnd


@dataclass
class _Part:
    name: str  # final name, relative to the output folder
    file: object
    writer: pq.ParquetWriter


class _Destination:
    """The part files of one shard for kept or excluded documents, with their pending rows."""

    def __init__(self, layout: OutputLayout, shard: str, excluded: bool, compression: str):
        self.layout, self.shard, self.excluded, self.compression = layout, shard, excluded, compression
        self.pending: list[Document] = []
        self.parts: list[_Part] = []
        self.schema: pa.Schema | None = None

    def flush(self) -> None:
        if not self.pending:
            return
        table = documents_to_table(self.pending)
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
        name = self.layout.part_name(self.shard, self.excluded, len(self.parts))
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


class ShardWriter(PipelineStep):
    name = "prox shard writer"
    type = "💽 - WRITER"

    def __init__(self, output_path: str, batch_size: int = 1000, compression: str = "zstd"):
        super().__init__()
        self.output_path = output_path
        self.batch_size = batch_size
        self.compression = compression

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        layout = OutputLayout(self.output_path)
        open_shards: dict[str, tuple[_Destination, _Destination]] = {}
        for document in data:
            if isinstance(document, ShardEnd):
                destinations = open_shards.pop(document.shard, None)
                with self.track_time("shard"):
                    if document.failed:
                        self._discard(layout, destinations)
                    else:
                        self._commit(layout, document.shard, destinations)
                yield document
                continue
            shard = document.metadata["prox_shard"]
            if shard not in open_shards:
                open_shards[shard] = tuple(_Destination(layout, shard, excluded, self.compression)
                                           for excluded in (False, True))
            destination = open_shards[shard][document.metadata["prox_action"] == "dropped"]
            destination.pending.append(document)
            if len(destination.pending) >= self.batch_size:
                with self.track_time("batch"):
                    destination.flush()
            yield document
        for destinations in open_shards.values():  # a pipeline that stopped early: nothing is committed
            self._discard(layout, destinations)

    def _commit(self, layout: OutputLayout, shard: str, destinations) -> None:
        """Replaces whatever an earlier attempt at this shard left with this attempt's files."""
        for excluded in (False, True):
            part = 0
            while layout.folder.isfile(name := layout.part_name(shard, excluded, part)):
                layout.remove(name)
                part += 1
        for destination in destinations or ():
            for name in destination.close():
                layout.move(layout.partial_name(name), name)
                self.stat_update("files_written")

    def _discard(self, layout: OutputLayout, destinations) -> None:
        for destination in destinations or ():
            for name in destination.close():
                layout.remove(layout.partial_name(name))
