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

    @property
    def weighted(self) -> int:
        """Tokens from the completion's first on: the positions whose predictions the loss needs."""
        return len(self.weights) - next(i for i, w in enumerate(self.weights) if w) + 1


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
                   ) -> tuple[list[Example], int]:
    """One example per row, and how many rows were left out for being longer than `max_length`
    (cutting them would train on prompts prox refine never sends)."""
    eos = tokenizer.eos_token_id
    encoded = tokenizer([row["completion"] for row in rows], add_special_tokens=False, return_offsets_mapping=True)
    examples, too_long = [], 0
    for row, ids, offsets in zip(rows, encoded["input_ids"], encoded["offset_mapping"], strict=True):
        prompt = list(row["prompt_token_ids"])
        if max_length is not None and len(prompt) + len(ids) + 1 > max_length:
            too_long += 1
            continue
        spans = key_spans(row["completion"])
        weights = [key_token_weight if any(s < end and start < e for s, e in spans) else 1.0
                   for start, end in offsets]
        examples.append(Example(prompt + list(ids) + [eos], [0.0] * len(prompt) + weights + [1.0]))
    return examples, too_long
