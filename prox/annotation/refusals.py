"""Why a teacher's answer was refused: the program language's error categories, and these."""

from __future__ import annotations

from dataclasses import dataclass

TEACHER_ERROR = "teacher_error"  # no answer: the server refused the request, or sent no completion
NO_SCORES = "no_scores"  # a doc answer without both score lines
SCORE_OUT_OF_RANGE = "score_out_of_range"  # a score above 5
LINE_OUTSIDE_CHUNK = "line_outside_chunk"  # a removal of lines the chunk does not show
REMOVES_TOO_MUCH = "removes_too_much"  # more of the chunk's words removed than --max-removal allows
NO_TEXT = "no_text"  # a rewrite without its [clean] ... [/clean] text
REWRITE_MISMATCH = "rewrite_mismatch"  # the derived program does not give the teacher's deletions
EMPTY_TEXT = "empty_text"  # a document with no text: nothing to ask about
INPUT_ERROR = "input_error"  # a row the reader could not read


@dataclass(frozen=True)
class Refused:
    category: str  # one of the above, or a prox.language.Category value
    message: str
