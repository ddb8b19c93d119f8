"""Doc-level labels: the teacher's two additive 0-5 scores, and the rule that makes them keep or drop."""

from __future__ import annotations

import re
from dataclasses import dataclass

from prox.annotation.refusals import NO_SCORES, SCORE_OUT_OF_RANGE, Refused

_EDUCATIONAL = re.compile(r"educational\s+score\s*[:=]\s*\**\s*(\d+)", re.IGNORECASE)
_FORMAT = re.compile(r"format\s+score\s*[:=]\s*\**\s*(\d+)", re.IGNORECASE)
MAX_SCORE = 5


@dataclass(frozen=True)
class Scores:
    educational: int
    format: int


@dataclass(frozen=True)
class LabelRule:
    """Keep when the educational score is at least `educational`, or at least `educational_with_format`
    with a format score of at least `format` (the ProX recipe: 3, or 2 with 4)."""

    educational: int = 3
    educational_with_format: int = 2
    format: int = 4

    def keeps(self, scores: Scores) -> bool:
        return scores.educational >= self.educational or (
            scores.educational >= self.educational_with_format and scores.format >= self.format)


def read_scores(answer: str) -> Scores | Refused:
    """The scores an answer ends with (the last of each line, as the prompt asks), or why not."""
    found = [pattern.findall(answer) for pattern in (_EDUCATIONAL, _FORMAT)]
    if not all(found):
        return Refused(NO_SCORES, "the answer lacks an 'Educational score: N' or a 'Format score: N' line")
    educational, format_ = (int(values[-1]) for values in found)
    if max(educational, format_) > MAX_SCORE:
        return Refused(SCORE_OUT_OF_RANGE, f"scores {educational} and {format_}: each must be 0 to {MAX_SCORE}")
    return Scores(educational, format_)
