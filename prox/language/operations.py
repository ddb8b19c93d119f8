"""What a parsed program is made of: typed operations and diagnostics, plain data only.

Operation fields other than `line` and `call` are the argument names declared in
programs/language.yaml; the spec loader checks that the two agree.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from operator import attrgetter
from typing import Any


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


_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f\x7f]')


def render_literal(value: Any) -> str:
    """A literal the parser reads back to the same value: strings double-quoted, controls escaped."""
    if not isinstance(value, str):
        return repr(value)
    if _NEEDS_ESCAPE.search(value) is None:
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


@lru_cache(maxsize=4096)
def _call_text(function: str, names: tuple[str, ...], values: tuple, types: tuple) -> str:
    """Remembered: programs repeat their calls (keep_chunk(), the first lines removed). `types` keeps
    True and 1 apart, which are equal as keys."""
    arguments = ", ".join(f"{name}={render_literal(value)}" for name, value in zip(names, values, strict=True))
    return f"{function}({arguments})"


_ARGUMENTS: dict[type, tuple[tuple[str, ...], Callable[[Any], tuple]]] = {}


def _arguments(operation_type: type) -> tuple[tuple[str, ...], Callable[[Any], tuple]]:
    """The argument fields of an operation type, and a function that reads their values as a tuple."""
    found = _ARGUMENTS.get(operation_type)
    if found is None:
        names = tuple(f.name for f in dataclasses.fields(operation_type)[2:] if f.name != "_call")
        getter = attrgetter(*names) if names else None
        if len(names) > 1:
            read = getter
        elif names:
            def read(op, getter=getter):
                return (getter(op),)
        else:
            def read(op):
                return ()
        found = _ARGUMENTS[operation_type] = (names, read)
    return found


def argument_names(operation_type: type) -> tuple[str, ...]:
    """The fields of an operation that are the call's arguments, in the spec's order."""
    return _arguments(operation_type)[0]


@dataclass(frozen=True, slots=True)
class Operation:
    """Base of all operations: where it came from; the other fields are the call's arguments."""

    line: int  # 1-based program line
    function: str  # the name the program called it by
    # the canonical text: the line itself when the program wrote it so, else made once asked for
    _call: str | None = dataclasses.field(default=None, compare=False, repr=False, kw_only=True)

    @property
    def call(self) -> str:
        """Canonical text, e.g. remove_lines(line_start=0, line_end=4); it parses back to this operation."""
        if self._call is None:
            names, read = _arguments(type(self))
            values = read(self)
            object.__setattr__(self, "_call", _call_text(self.function, names, values, tuple(map(type, values))))
        return self._call


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
