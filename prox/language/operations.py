"""What a parsed program is made of: typed operations and diagnostics, plain data only.

Operation fields other than `line` and `call` are the argument names declared in
programs/language.yaml; the spec loader checks that the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Category(str, Enum):
    """The small set of ways a program can be wrong (or odd)."""

    NOT_A_CALL = "not_a_call"  # code that is not a call: assignments, imports, expressions
    PROSE = "prose"  # natural language, comments, markdown
    SYNTAX = "syntax"  # looks like a call but is malformed
    UNKNOWN_FUNCTION = "unknown_function"  # a call to a function the level does not have
    WRONG_ARGUMENTS = "wrong_arguments"  # missing, extra, duplicate or unknown arguments
    BAD_VALUE = "bad_value"  # wrong type, out of bounds, unsafe character, text would grow too much
    LINE_OUT_OF_RANGE = "line_out_of_range"  # a removal past the document's last line
    TRUNCATED = "truncated"  # a call cut off before its closing parenthesis or quote
    OVER_LIMIT = "over_limit"  # program or program line longer than the language's limits
    NO_EFFECT = "no_effect"  # valid but does nothing (normalize of a string that does not occur)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found in a program. `counted` diagnostics count toward `error_op`."""

    category: Category
    line: int  # 1-based program line; 0 for the whole program
    message: str
    counted: bool = False
    level: str = ""  # "doc" or "chunk"

    def to_dict(self) -> dict:
        return {"level": self.level, "category": self.category.value, "line": self.line,
                "message": self.message, "counted": self.counted}


@dataclass(frozen=True, slots=True)
class Operation:
    """Base of all operations: where it came from and its canonical call text."""

    line: int  # 1-based program line
    call: str  # canonical text, e.g. remove_lines(line_start=0, line_end=4)


@dataclass(frozen=True, slots=True)
class DropDoc(Operation):
    pass


@dataclass(frozen=True, slots=True)
class KeepDoc(Operation):
    pass


@dataclass(frozen=True, slots=True)
class KeepChunk(Operation):
    pass


@dataclass(frozen=True, slots=True)
class RemoveLines(Operation):
    line_start: int
    line_end: int


@dataclass(frozen=True, slots=True)
class RemoveAllLines(Operation):
    all: bool


@dataclass(frozen=True, slots=True)
class Normalize(Operation):
    source_str: str
    target_str: str


OPERATION_TYPES: dict[str, type[Operation]] = {
    cls.__name__: cls for cls in (DropDoc, KeepDoc, KeepChunk, RemoveLines, RemoveAllLines, Normalize)
}


@dataclass(frozen=True, slots=True)
class Program:
    """A parsed program: the operations to run, in order, and what was wrong with the text."""

    operations: tuple[Operation, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()
    refused: bool = False  # the whole program was refused (over a limit); nothing runs

    @property
    def errors(self) -> int:
        """Counted diagnostics: errors as the reference counts them."""
        return sum(d.counted for d in self.diagnostics)
