"""Model output text in, a Program (typed operations plus diagnostics) out.

The parser reads Python call syntax line by line against the functions of one level of the
language (programs/language.yaml). It never calls eval, exec or compile, never recurses, bounds
every size, and never raises: whatever the text, it returns a Program.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from prox.language import lexer
from prox.language.lexer import Token
from prox.language.operations import Category, Diagnostic, Operation, Program
from prox.language.spec import (
    UNSET,
    ArgSpec,
    FormSpec,
    FunctionSpec,
    Language,
    Level,
    Limits,
    load_language,
)

_UNSAFE_RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_NUL_OR_SURROGATE = re.compile("[\x00\ud800-\udfff]")
_PROSE = re.compile(r"[^\W\d_][\w'’\-]*(?:[ ,.:;!?]+[\w'’\-]+)+[ .:!?]*")
_LITERAL_NAMES = {"True": True, "False": False, "None": None}

# The fast path: a plain call with up to two int, bool or simple double-quoted arguments (what models
# write almost always) is read with one match; anything else goes through the tokenizer.
_SIMPLE_ARGUMENT = r'(?:([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*)?(-?[0-9]{1,18}|"[^"\\\x00-\x1f\x7f]*"|True|False)'
_SIMPLE_CALL = re.compile(
    rf"([A-Za-z_][A-Za-z0-9_]*)\([ \t]*(?:{_SIMPLE_ARGUMENT}[ \t]*(?:,[ \t]*{_SIMPLE_ARGUMENT}[ \t]*)?,?[ \t]*)?\)")
_MEMO_PROGRAM_CHARS = 4096  # programs up to this long are remembered: doc programs repeat all the time
_MEMO_LINE_CHARS = 256  # lines up to this long are remembered: keep_chunk() and the like repeat too
_MEMO_LINES = 50_000  # remembered lines per level, at most (then the memory starts afresh)
# Calls as prox writes them (keyword arguments in order, ", " between them, strings with nothing to escape)
# are read with one match and no binding: how refining models write nearly every line.
_CANONICAL_VALUE = {"int": "(0|-?[1-9][0-9]{0,17})", "bool": "(True|False)",
                    "str": r'("[^"\\\x00-\x1f\x7f\ud800-\udfff]*")'}


class _Reject(Exception):
    """Internal: one statement is refused; carries its diagnostic. Never leaves this module."""

    def __init__(self, category: Category, message: str):
        self.category = category
        self.message = message


def parse_program(text: Any, level: str, language: Language | None = None) -> Program:
    """Parses a refining model's output for `level` ("doc" or "chunk"). Never raises."""
    if language is None and isinstance(text, str) and len(text) <= _MEMO_PROGRAM_CHARS:
        return _parse_remembered(text, level)
    return _parse(text, level, language or load_language())


def forget_parsed() -> None:
    """Drops the remembered programs and lines (for benchmarks that measure parsing from cold)."""
    _parse_remembered.cache_clear()
    for shipped in _shipped_levels().values():
        shipped.lines.clear()


@lru_cache(maxsize=1024)
def _parse_remembered(text: str, level: str) -> Program:
    return _parse(text, level, load_language())


@dataclass(frozen=True)
class _CanonicalForm:
    """A form's call as prox writes it, with its first `given` arguments (the rest take defaults)."""

    pattern: re.Pattern
    form: FormSpec
    given: int


@dataclass
class _ShippedLevel:
    """What parsing keeps between programs of one level of the shipped language: the lines already read
    ((line, line number) -> operations and diagnostics), and its functions' canonical forms by name."""

    canonical: dict[str, tuple[_CanonicalForm, ...]]
    lines: dict[tuple[str, int], tuple] = field(default_factory=dict)


def _canonical_forms(level: Level) -> dict[str, tuple[_CanonicalForm, ...]]:
    """A pattern for each way prox writes a call of each function (FunctionSpec.written_forms)."""
    found = {}
    for name, spec in level.functions.items():
        forms = []
        for form, given in spec.written_forms():
            arguments = ", ".join(f"{arg.name}={_CANONICAL_VALUE[arg.type]}" for arg in form.args[:given])
            forms.append(_CanonicalForm(re.compile(rf"{re.escape(name)}\({arguments}\)"), form, given))
        found[name] = tuple(forms)
    return found


@lru_cache(maxsize=1)
def _shipped_levels() -> dict[str, _ShippedLevel]:
    return {name: _ShippedLevel(_canonical_forms(level)) for name, level in load_language().levels.items()}


def _parse(text: Any, level: str, language: Language) -> Program:
    shipped = _shipped_levels()[level] if language is load_language() else None
    try:
        return _ProgramParser(language.level(level), language.limits, shipped).parse(text)
    except Exception as error:  # a bug in the parser must never cost a document
        message = f"parser error, program ignored: {type(error).__name__}"
        return Program(diagnostics=(Diagnostic(Category.SYNTAX, 0, message, True, level),), refused=True)


class _ProgramParser:
    def __init__(self, level: Level, limits: Limits, shipped: _ShippedLevel | None = None):
        """`shipped`: what earlier programs of the shipped language left to reuse."""
        self.level = level
        self.limits = limits
        self.shipped = shipped
        self.operations: list[Operation] = []
        self.diagnostics: list[Diagnostic] = []

    def parse(self, text: Any) -> Program:
        if text is None:
            return Program()
        if not isinstance(text, str):
            return self._refuse(f"program is a {type(text).__name__}, not text", Category.BAD_VALUE)
        if len(text) > self.limits.max_program_chars:
            return self._refuse(f"program has {len(text)} characters, limit {self.limits.max_program_chars}")
        lines = text.strip(" ").split("\n")
        if len(lines) > self.limits.max_statements:
            statements = sum(1 for line in lines if line.strip())
            if statements > self.limits.max_statements:
                return self._refuse(f"program has {statements} statements, limit {self.limits.max_statements}")
        for number, raw in enumerate(lines, start=1):
            line = raw.strip()
            if line:
                self._parse_line(line, number)
        if len(self.operations) > self.limits.max_statements:
            return self._refuse(f"program has {len(self.operations)} operations, limit {self.limits.max_statements}")
        return Program(tuple(self.operations), tuple(self.diagnostics))

    def _refuse(self, message: str, category: Category = Category.OVER_LIMIT) -> Program:
        diag = Diagnostic(category, 0, message + "; program refused", True, self.level.name)
        return Program(diagnostics=(diag,), refused=True)

    def _note(self, category: Category, line: int, message: str, counted: bool) -> None:
        self.diagnostics.append(Diagnostic(category, line, message, counted, self.level.name))

    def _counts(self, name: str) -> bool:
        spec = self.level.functions.get(name)
        return bool(spec and spec.counts_errors)

    def _parse_line(self, line: str, number: int) -> None:
        if self.shipped is None or len(line) > _MEMO_LINE_CHARS:
            return self._read_line(line, number)
        memo, key = self.shipped.lines, (line, number)
        if (seen := memo.get(key)) is not None:
            operations, diagnostics = seen
            if operations:
                self.operations += operations
            if diagnostics:
                self.diagnostics += diagnostics
            return None
        operations, diagnostics = len(self.operations), len(self.diagnostics)
        self._read_line(line, number)
        if len(memo) >= _MEMO_LINES:
            memo.clear()
        memo[key] = (tuple(self.operations[operations:]), tuple(self.diagnostics[diagnostics:]))
        return None

    def _read_canonical(self, line: str, number: int) -> bool:
        """Adds the operation of a call written as prox writes it, if its values are within bounds."""
        if self.shipped is None:
            return False
        name = line[: line.find("(")]
        for canonical in self.shipped.canonical.get(name, ()):
            match = canonical.pattern.fullmatch(line)
            if match is None:
                continue
            args = canonical.form.args
            values = [_simple_literal(text) for text in match.groups()]
            if not self._within_bounds(name, args, values):
                return False
            values += [arg.default for arg in args[canonical.given :]]
            call = line if canonical.given == len(args) else None
            self.operations.append(canonical.form.operation(number, name, *values, _call=call))
            return True
        return False

    def _within_bounds(self, function: str, args: tuple[ArgSpec, ...], values: list) -> bool:
        """Whether the values pass _check_value (the general path then says which bound one breaks)."""
        try:
            for arg, value in zip(args, values, strict=False):
                self._check_value(function, arg, value)
        except _Reject:
            return False
        return True

    def _read_line(self, line: str, number: int) -> None:
        if len(line) > self.limits.max_line_chars:
            self._note(Category.OVER_LIMIT, number, f"line has {len(line)} characters, limit "
                       f"{self.limits.max_line_chars}", self._counts(_first_name(line)))
            return
        if self._read_canonical(line, number):
            return
        if _UNSAFE_RAW.search(line):
            self._note(Category.BAD_VALUE, number, "control character in program text",
                       self._counts(_first_name(line)))
            return
        if simple := _simple_call(line):
            self._call(*simple, number)
            return
        tokens = lexer.tokenize(line)
        if tokens and tokens[-1].kind == lexer.COMMENT:
            tokens.pop()
        if not tokens:
            self._note(Category.PROSE, number, "comment", False)
            return
        pos = 0
        while pos < len(tokens):
            if not self._starts_call(tokens, pos):
                if pos == 0:
                    self._classify_non_call(line, tokens, number)
                else:
                    self._note(Category.SYNTAX, number, "text after the call ignored", False)
                return
            name = tokens[pos].text
            if name not in self.level.functions:
                self._call(name, [], {}, number)
                return
            try:
                pos, positional, keywords = _read_call(tokens, pos)
            except _Reject as rejected:
                self._note(rejected.category, number, rejected.message, self._counts(name))
                return
            if not self._call(name, positional, keywords, number):
                return
            if pos < len(tokens) and tokens[pos] == (lexer.PUNCT, ";"):
                pos += 1
            elif pos < len(tokens):
                self._note(Category.SYNTAX, number, "text after the call ignored", False)
                return

    def _call(self, name: str, positional: list, keywords: dict, number: int) -> bool:
        """Adds the operation of a call whose literal arguments were read; False if it was refused."""
        if name not in self.level.functions:
            self._note(Category.UNKNOWN_FUNCTION, number, f"{_excerpt(name)} is not a {self.level.name}-level function",
                       False)
            return False
        try:
            self.operations.append(self._bind(name, positional, keywords, number))
        except _Reject as rejected:
            self._note(rejected.category, number, rejected.message, self._counts(name))
            return False
        return True

    def _starts_call(self, tokens: list[Token], pos: int) -> bool:
        token = tokens[pos]
        if token.kind != lexer.NAME or token.text in _LITERAL_NAMES or keyword.iskeyword(token.text):
            return False
        followed_by_paren = pos + 1 < len(tokens) and tokens[pos + 1] == (lexer.PUNCT, "(")
        return followed_by_paren or token.text in self.level.functions

    def _classify_non_call(self, line: str, tokens: list[Token], number: int) -> None:
        first = tokens[0]
        is_code = "__" in line or (first.kind == lexer.NAME and ("." in first.text or keyword.iskeyword(first.text)))
        if not is_code and (line.startswith(("#", "```")) or _PROSE.fullmatch(line)):
            self._note(Category.PROSE, number, "text that is not a program line", False)
        else:
            self._note(Category.NOT_A_CALL, number, f"not a function call: {_excerpt(line)}", False)

    def _bind(self, name: str, positional: list, keywords: dict, number: int) -> Operation:
        spec = self.level.functions[name]
        failures = []
        for form in spec.forms:
            try:
                return self._bind_form(spec, form, positional, keywords, number)
            except _Reject as rejected:
                matched = sum(k in form.names for k in keywords)
                failures.append((matched, rejected))
        best = max(failures, key=lambda f: f[0])  # the form the caller most likely meant; first wins ties
        raise best[1]

    def _bind_form(
        self, spec: FunctionSpec, form: FormSpec, positional: list, keywords: dict, number: int
    ) -> Operation:
        if len(positional) > len(form.args):
            raise _Reject(Category.WRONG_ARGUMENTS,
                          f"{spec.name} takes {len(form.args)} arguments, got {len(positional)} positional")
        values = {arg.name: value for arg, value in zip(form.args, positional, strict=False)}
        for key, value in keywords.items():
            if key not in form.names:
                raise _Reject(Category.WRONG_ARGUMENTS, f"{spec.name} has no argument {_excerpt(key)}")
            if key in values:
                raise _Reject(Category.WRONG_ARGUMENTS, f"argument {key} given twice")
            values[key] = value
        for arg in form.args:
            if arg.name not in values:
                if arg.required:
                    raise _Reject(Category.WRONG_ARGUMENTS, f"{spec.name} is missing argument {arg.name}")
                values[arg.name] = arg.default
            self._check_value(spec.name, arg, values[arg.name])
        return form.operation(line=number, function=spec.name, **values)

    def _check_value(self, function: str, arg, value: Any) -> None:
        if type(value) is not arg.python_type:
            raise _Reject(Category.BAD_VALUE, f"{function}: {arg.name} must be {arg.type}, got {_excerpt(value)}")
        if arg.type == "int":
            if abs(value) > self.limits.max_int:
                raise _Reject(Category.BAD_VALUE, f"{function}: {arg.name} is larger than {self.limits.max_int}")
            if arg.min is not None and value < arg.min:
                raise _Reject(Category.BAD_VALUE, f"{function}: {arg.name} must be at least {arg.min}")
        if arg.type == "str":
            if len(value) > self.limits.max_string_chars:
                raise _Reject(Category.BAD_VALUE,
                              f"{function}: {arg.name} is longer than {self.limits.max_string_chars} characters")
            if _NUL_OR_SURROGATE.search(value):
                raise _Reject(Category.BAD_VALUE, f"{function}: {arg.name} has a NUL or a lone surrogate")
        if arg.equals is not UNSET and value != arg.equals:
            raise _Reject(Category.BAD_VALUE, f"{function}: {arg.name} must be {arg.equals!r}")


def _first_name(line: str) -> str:
    """The name a line starts with (before its first parenthesis), for a line refused whole."""
    return line.split("(", 1)[0].strip()


def _simple_call(line: str) -> tuple[str, list, dict] | None:
    """Name and arguments of a plain call, or None when the line needs the tokenizer."""
    match = _SIMPLE_CALL.fullmatch(line)
    if match is None:
        return None
    name, key_1, value_1, key_2, value_2 = match.groups()
    if key_1 is not None and (key_1 == key_2 or (key_2 is None and value_2 is not None)):
        return None  # a repeated keyword or a positional after a keyword: the tokenizer path says which
    positional, keywords = [], {}
    for key, value in ((key_1, value_1), (key_2, value_2)):
        if value is None:
            continue
        if key is None:
            positional.append(_simple_literal(value))
        else:
            keywords[key] = _simple_literal(value)
    return name, positional, keywords


def _simple_literal(text: str) -> Any:
    if text[0] == '"':
        return text[1:-1]
    return _LITERAL_NAMES[text] if text in _LITERAL_NAMES else int(text)


def _read_call(tokens: list[Token], pos: int) -> tuple[int, list, dict]:
    """Reads NAME ( args ) starting at pos; returns the position after ')' and the literal arguments."""
    pos += 1
    if pos >= len(tokens) or tokens[pos] != (lexer.PUNCT, "("):
        raise _Reject(Category.SYNTAX, f"{tokens[pos - 1].text} without '('")
    pos += 1
    positional: list = []
    keywords: dict = {}
    while True:
        if pos >= len(tokens):
            raise _Reject(Category.TRUNCATED, "call ends before its closing parenthesis")
        token = tokens[pos]
        if token == (lexer.PUNCT, ")"):
            return pos + 1, positional, keywords
        if token.kind == lexer.NAME and pos + 1 < len(tokens) and tokens[pos + 1] == (lexer.PUNCT, "="):
            key = token.text
            pos += 2
            if key in keywords:
                raise _Reject(Category.WRONG_ARGUMENTS, f"argument {_excerpt(key)} given twice")
            value, pos = _read_literal(tokens, pos)
            keywords[key] = value
        else:
            if keywords:
                raise _Reject(Category.WRONG_ARGUMENTS, "positional argument after keyword argument")
            value, pos = _read_literal(tokens, pos)
            positional.append(value)
        if pos >= len(tokens):
            raise _Reject(Category.TRUNCATED, "call ends before its closing parenthesis")
        if tokens[pos] == (lexer.PUNCT, ","):
            pos += 1
        elif tokens[pos] != (lexer.PUNCT, ")"):
            raise _Reject(Category.SYNTAX, f"expected ',' or ')' but found {_excerpt(tokens[pos].text)}")


def _read_literal(tokens: list[Token], pos: int) -> tuple[Any, int]:
    if pos >= len(tokens):
        raise _Reject(Category.TRUNCATED, "call ends before its closing parenthesis")
    kind, text = tokens[pos]
    if kind == lexer.INT:
        if len(text.lstrip("+-")) > 18:
            raise _Reject(Category.BAD_VALUE, "integer with more than 18 digits")
        return int(text), pos + 1
    if kind == lexer.STRING:
        if pos + 1 < len(tokens) and tokens[pos + 1].kind in (lexer.STRING, lexer.OPEN_STRING):
            raise _Reject(Category.SYNTAX, "adjacent strings")
        return lexer.string_value(text), pos + 1
    if kind == lexer.OPEN_STRING:
        raise _Reject(Category.TRUNCATED, "string ends before its closing quote")
    if kind == lexer.NAME and text in _LITERAL_NAMES:
        return _LITERAL_NAMES[text], pos + 1
    if kind == lexer.NUMBER:
        raise _Reject(Category.BAD_VALUE, f"{_excerpt(text)} is not an integer")
    if kind == lexer.NAME:
        after = tokens[pos + 1] if pos + 1 < len(tokens) else None
        what = "a call" if after == (lexer.PUNCT, "(") else "a name"
        raise _Reject(Category.BAD_VALUE, f"arguments must be literal values, not {what} ({_excerpt(text)})")
    raise _Reject(Category.SYNTAX, f"unexpected {_excerpt(text)} in arguments")


def _excerpt(value: Any, limit: int = 60) -> str:
    """A value shown in a message: repr escapes controls and surrogates, so records stay valid UTF-8."""
    if isinstance(value, str) and len(value) > limit:
        value = value[: limit - 1] + "…"
    return repr(value)
