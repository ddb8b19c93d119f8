"""Splits one program statement line into tokens with a single regular expression.

Never raises and never evaluates: anything unexpected becomes an OTHER token, an unclosed quote
an OPEN_STRING token. Python-style literals only: integers, quoted strings, True/False/None.
"""

from __future__ import annotations

import re
from typing import NamedTuple

NAME = "name"
INT = "int"
NUMBER = "number"  # floats, hex, 1_000, 1e5: a number prox does not accept
STRING = "string"
OPEN_STRING = "open_string"
PUNCT = "punct"
COMMENT = "comment"
OTHER = "other"

_TOKEN = re.compile(
    r"""
    [ \t]*(?:
      (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    | (?P<int>[+-]?[0-9]+(?![0-9A-Za-z_.]))
    | (?P<number>[+-]?\.?[0-9][0-9A-Za-z_.]*)
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<open_string>["'].*)
    | (?P<punct>[(),=;])
    | (?P<comment>\#.*)
    | (?P<other>.)
    )""",
    re.VERBOSE | re.DOTALL,
)

_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{1,3}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b",
                   "f": "\f", "v": "\v", "\n": ""}


class Token(NamedTuple):
    kind: str
    text: str


def tokenize(line: str) -> list[Token]:
    """Tokens of one line, whitespace dropped. A trailing comment becomes one COMMENT token."""
    return [Token(m.lastgroup, m.group(m.lastgroup)) for m in _TOKEN.finditer(line) if m.lastgroup]


def _unescape_one(match: re.Match) -> str:
    body = match.group(1)
    if body in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[body]
    if body[0] in "xuU":
        code = int(body[1:], 16)
        return chr(code) if code <= 0x10FFFF else match.group(0)
    if body[0] in "01234567":
        return chr(int(body, 8))
    return match.group(0)  # unknown escapes stay as written, as in Python


def string_value(token_text: str) -> str:
    """The value of a STRING token: quotes removed, Python escapes decoded (never evaluated)."""
    body = token_text[1:-1]
    return _ESCAPE.sub(_unescape_one, body) if "\\" in body else body
