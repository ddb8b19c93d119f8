"""The settings that decide what a program's result becomes (reference defaults)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Policy:
    threshold_1: float = 0.0  # keep the refined text only if at least this share of words remains
    threshold_2: float = 0.95  # drop the document if the program removed at least this share of words
    error_op: int = 2  # with this many counted errors, the program is ignored and the original kept
    count_all_diagnostics: bool = False  # strict: every diagnostic counts toward error_op
    min_words: int = 10  # a result with at most this many words is dropped (the reference's FineWeb rule)
    drop_threshold: float | None = None  # drop when doc_drop_probability >= this (None: the doc program decides)

    def to_dict(self) -> dict:
        return asdict(self)


# Runs a program for what it does, whatever is left: nothing is dropped for removing too much or
# leaving too few words (annotation measures what a teacher's program removes)
MEASURING = Policy(threshold_2=1.1, min_words=-1)
