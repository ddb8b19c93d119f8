"""Documents to Arrow tables: `id`, `text`, and `metadata` with prox's record fields at fixed types.

The input's own metadata keeps the types Arrow infers for it; where one field holds values of
different types, that batch's input metadata is stored as JSON text instead of failing.
"""

from __future__ import annotations

import orjson
import pyarrow as pa
from datatrove.data import Document

from prox.language import Category

_DIAGNOSTIC = pa.struct([("level", pa.string()), ("category", pa.string()), ("line", pa.int64()),
                         ("message", pa.string()), ("counted", pa.bool_())])

RECORD_FIELDS = pa.schema([
    ("doc_program", pa.string()),
    ("chunk_program", pa.string()),
    ("prox_shard", pa.string()),
    ("prox_row", pa.int64()),
    ("prox_input_error", pa.string()),
    ("prox_engine_error", pa.string()),
    ("prox_action", pa.string()),
    ("prox_reason", pa.string()),
    ("prox_operations", pa.list_(pa.string())),
    ("prox_diagnostics", pa.struct([(c.value, pa.int64()) for c in Category])),
    ("prox_diagnostic_details", pa.list_(_DIAGNOSTIC)),
    ("prox_errors", pa.int64()),
    ("prox_words_before", pa.int64()),
    ("prox_words_after", pa.int64()),
])
_RECORD_NAMES = frozenset(RECORD_FIELDS.names)


def _input_metadata(documents: list[Document]) -> pa.StructArray:
    rows = [{k: v for k, v in d.metadata.items() if k not in _RECORD_NAMES} for d in documents]
    try:
        return pa.array(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        as_json = [{k: orjson.dumps(v, default=str).decode() for k, v in row.items()} for row in rows]
        return pa.array(as_json)


def _record_value(field: pa.Field, value):
    """Program columns may arrive as other types from the input; they are stored as text."""
    if value is not None and pa.types.is_string(field.type) and not isinstance(value, str):
        return orjson.dumps(value, default=str).decode()
    return value


def documents_to_table(documents: list[Document]) -> pa.Table:
    free = _input_metadata(documents)
    children = [free.field(i) for i in range(free.type.num_fields)]
    fields = list(free.type)
    for field in RECORD_FIELDS:
        values = [_record_value(field, d.metadata.get(field.name)) for d in documents]
        children.append(pa.array(values, type=field.type))
        fields.append(field)
    metadata = pa.StructArray.from_arrays(children, fields=fields) if fields else free
    return pa.table({
        "id": pa.array([d.id for d in documents], pa.string()),
        "text": pa.array([d.text for d in documents], pa.string()),
        "metadata": metadata,
    })


PROMPT_FIELDS = pa.schema([
    ("id", pa.string()),
    ("stage", pa.string()),  # "doc" or "chunk"
    ("chunk", pa.int32()),  # 0 for the doc stage
    ("prompt", pa.string()),  # the prompt as text
    ("prompt_token_ids", pa.list_(pa.int32())),  # exactly the ids the engine receives
])


def prompts_to_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=PROMPT_FIELDS)


EXAMPLE_FIELDS = pa.schema([
    ("id", pa.string()),
    ("stage", pa.string()),  # "doc" or "chunk"
    ("chunk", pa.int32()),  # 0 for the doc stage
    ("prompt", pa.string()),  # exactly what prox refine sends, as text
    ("prompt_token_ids", pa.list_(pa.int32())),  # and as the ids the engine receives
    ("completion", pa.string()),  # the program the refiner should write
    ("teacher", pa.string()),
    ("educational_score", pa.int32()),  # doc: the teacher's scores and the label they give
    ("format_score", pa.int32()),
    ("label", pa.string()),  # "keep" or "drop"
    ("method", pa.string()),  # chunk: "programs" or "rewrite"
    ("first_line", pa.int32()),  # the document lines the chunk shows, first and last
    ("last_line", pa.int32()),
    ("removed_lines", pa.list_(pa.int32())),  # the document lines the completion removes
    ("kinds", pa.list_(pa.string())),  # the kinds of noise whose programs had calls
])

REFUSED_FIELDS = pa.schema([
    ("id", pa.string()),
    ("stage", pa.string()),
    ("chunk", pa.int32()),
    ("prompt_name", pa.string()),  # the teacher prompt (programs/teacher/NAME.yaml)
    ("category", pa.string()),  # why the answer was refused (prox/annotation/refusals.py)
    ("message", pa.string()),
    ("answer", pa.string()),  # the teacher's answer as it came
])


def annotations_to_table(kind: str, rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=REFUSED_FIELDS if kind == "refused" else EXAMPLE_FIELDS)
