"""Fine-tuning examples from an annotated set: the prompt's ids as prox refine sends them, then the
completion's ids and EOS; loss on the completion only, with key tokens weighted (TL-Training).

Key tokens are those of function names and argument values (`drop_doc`, `remove_lines`, `12`,
`"Read more"`): the tokens that decide what a program does. With `key_token_weight` W they count
W times the rest of the completion in the loss; the prompt counts 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

_FUNCTION = re.compile(r"^[ \t]*([A-Za-z_]\w*)\s*\(", re.MULTILINE)
_VALUE = re.compile(r"=\s*(\"(?:[^\"\\]|\\.)*\"|-?\d+|True|False)")


class DataError(Exception):
    """An annotated set that cannot be trained on as asked (missing, empty, another tokenizer)."""


@dataclass(frozen=True)
class Example:
    input_ids: list[int]
    weights: list[float]  # per token: 0 for the prompt, 1 or the key weight for the completion


def key_spans(completion: str) -> list[tuple[int, int]]:
    """Character spans of the completion's function names and argument values."""
    spans = [m.span(1) for m in _FUNCTION.finditer(completion)]
    return sorted(spans + [m.span(1) for m in _VALUE.finditer(completion)])


def split_rows(data: str | Path, stage: str, split: str) -> list[dict]:
    """The rows of one stage's split of an annotated set (DATA/STAGE/SPLIT/*.parquet)."""
    files = sorted((Path(data) / stage / split).glob("*.parquet"))
    return [row for path in files for row in pq.read_table(path).to_pylist()]


def check_tokenizer(rows: list[dict], tokenizer) -> None:
    """Raises DataError unless `tokenizer` gives the first row's stored prompt ids: the prompts were
    built with the tokenizer of the model to train, as prox refine will build them for it."""
    row = rows[0]
    stored = row["prompt_token_ids"]
    ids = tokenizer(row["prompt"], add_special_tokens=row["stage"] == "chunk")["input_ids"]
    if ids[: len(stored)] != stored:
        raise DataError("the set's prompts were built with another tokenizer than the base model's; annotate "
                        "again with --tokenizer set to the base model")


def build_examples(rows: list[dict], tokenizer, key_token_weight: float = 1.0, max_length: int | None = None
                   ) -> list[Example]:
    """One example per row; a prompt that leaves no room for its completion within `max_length` is
    cut from its end, as the reference cuts long doc prompts."""
    eos = tokenizer.eos_token_id
    encoded = tokenizer([row["completion"] for row in rows], add_special_tokens=False, return_offsets_mapping=True)
    examples = []
    for row, ids, offsets in zip(rows, encoded["input_ids"], encoded["offset_mapping"], strict=True):
        spans = key_spans(row["completion"])
        weights = [key_token_weight if any(s < end and start < e for s, e in spans) else 1.0
                   for start, end in offsets]
        prompt = list(row["prompt_token_ids"])
        if max_length is not None:
            prompt = prompt[: max(0, max_length - len(ids) - 1)]
        examples.append(Example(prompt + list(ids) + [eos], [0.0] * len(prompt) + weights + [1.0]))
    return examples
