"""The language as a grammar, for --constrained: llguidance's Lark syntax, made at run time from
programs/language.yaml, so a function added there needs nothing else.

A program the grammar accepts parses with no diagnostics: calls written as prox writes them
(FunctionSpec.written_forms), one per line; line numbers among the chunk's own lines; other integers
within the language's bounds; strings of at most `constrained_string_chars` characters with only the
escapes \\n, \\t, \\r, \\" and \\\\. Greedy decoding under it picks the model's own token wherever
that token is allowed, so a program the model writes this way on its own comes out the same.

llguidance comes with vLLM, which picks it for a grammar that starts with `%llguidance`; the
transformers engine applies it itself (prox/engines/constraint.py). It reads a string as one regular
expression, so bounding its length costs nothing (0.2 ms a token here); xgrammar, vLLM's other
grammar library, took 28 to 580 ms a token to mask a bounded repetition, or 0.3 to 1.2 s to compile
it, for every chunk. The bound keeps a model from spending the chunk's 256-token budget on one string.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

from prox.language.operations import render_literal
from prox.language.spec import UNSET, ArgSpec, Language, Level, load_language

HEADER = "%llguidance {}"  # llguidance's own syntax: vLLM hands the grammar to llguidance, not xgrammar


def program_grammar(level: str, lines: tuple[int, int] | None = None, language: Language | None = None) -> str:
    """The grammar of a program for `level`; at the chunk level, `lines` (first, last) are the line
    numbers the chunk shows (None: any line number)."""
    if language is None:
        return _shipped_grammar(level, lines)
    return _grammar(language, level, lines)


@lru_cache(maxsize=4096)
def _shipped_grammar(level: str, lines: tuple[int, int] | None) -> str:
    return _grammar(load_language(), level, lines)


def _grammar(language: Language, level_name: str, lines: tuple[int, int] | None) -> str:
    level = language.level(level_name)
    more = "" if level_name == "doc" else ' ("\\n" line)*'  # a doc program is one call
    rules = [HEADER, f'start: " "? " "? line{more} "\\n"?',
             "line: " + " | ".join(_rule_name(name) for name in level.functions)]
    rules += [f"{_rule_name(name)}: {_calls(level, name)}" for name in level.functions]
    if re.search(r"\bLINE_NUMBER\b", " ".join(rules)):  # the value terminals the calls use
        rules.append(_line_numbers(lines))
    if re.search(r"\bINT\b", " ".join(rules)):
        rules.append(f"INT: /[0-9]{{1,{len(str(language.limits.max_int)) - 1}}}/")  # below the largest
    if re.search(r"\bSTRING\b", " ".join(rules)):
        rules.append(f'STRING: /"({_STRING_CHAR}){{0,{language.limits.constrained_string_chars}}}"/')
    return "\n".join(rules) + "\n"


_STRING_CHAR = r'[^"\\\x00-\x1f\x7f]|\\[nrt"\\]'  # no control character; escapes the parser decodes


def _rule_name(function: str) -> str:
    return "call_" + function


def _literal(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # Lark strings escape as JSON does


def _calls(level: Level, function: str) -> str:
    """Every way prox writes a call of `function`, as alternatives."""
    calls = []
    for form, given in level.functions[function].written_forms():
        parts = [_literal(function + "(")]
        for index, arg in enumerate(form.args[:given]):
            parts += [_literal((", " if index else "") + arg.name + "="), _value(arg)]
        parts.append(_literal(")"))
        calls.append(" ".join(parts))
    return " | ".join(f"({call})" for call in calls)


def _value(arg: ArgSpec) -> str:
    if arg.equals is not UNSET:
        return _literal(render_literal(arg.equals))
    if arg.type == "str":
        return "STRING"
    if arg.type == "bool":
        return '("True" | "False")'
    if arg.line:
        return "LINE_NUMBER"
    return "INT" if arg.min is not None and arg.min >= 0 else '"-"? INT'


_LISTED_LINE_NUMBERS = re.compile(r'^LINE_NUMBER: "[0-9]+"(?: \| "[0-9]+")*$', re.MULTILINE)


def without_line_numbers(grammar: str) -> str:
    """`grammar` with the line numbers its chunk lists left out. Chunk grammars that differ only there
    are valid or not alike, so that a check of one holds for all (prox's vLLM plugin checks one)."""
    return _LISTED_LINE_NUMBERS.sub('LINE_NUMBER: "0"', grammar)


def _line_numbers(lines: tuple[int, int] | None) -> str:
    if lines is None:
        return "LINE_NUMBER: INT"
    first, last = lines
    return "LINE_NUMBER: " + " | ".join(f'"{number}"' for number in range(first, last + 1))
