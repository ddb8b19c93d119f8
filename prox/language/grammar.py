"""The language as a grammar, for --constrained: GBNF (llama.cpp's EBNF, which xgrammar reads, and so
vLLM), made at run time from programs/language.yaml, so a function added there needs nothing else.

A program the grammar accepts parses with no diagnostics: calls written as prox writes them
(FunctionSpec.written_forms), one per line; line numbers among the chunk's own lines; other integers
within the language's bounds; strings with only the escapes \\n, \\t, \\r, \\" and \\\\. Greedy decoding
under it picks the model's own token wherever that token is allowed, so a program the model writes
this way on its own comes out the same.

No bounded repetition (`{m,n}`): xgrammar 0.2 takes 28 to 580 ms per token to mask one (0.04 ms for `*`).
The generation budget bounds a program instead: 256 tokens write far fewer than the language's
largest string or most statements.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

from prox.language.operations import render_literal
from prox.language.spec import UNSET, ArgSpec, Language, Level, load_language

_STRING = r'string ::= "\"" string-char* "\""' + "\n" + r'string-char ::= [^"\\\x00-\x1f\x7f] | "\\" [nrt"\\]'


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
    rules = [f'root ::= " "? " "? line{more} "\\n"?',
             "line ::= " + " | ".join(_rule_name(name) for name in level.functions)]
    rules += [f"{_rule_name(name)} ::= {_calls(level, name)}" for name in level.functions]
    if re.search(r"\bline-number\b", " ".join(rules)):  # the value rules the calls use
        rules.append(_line_numbers(lines))
    if re.search(r"\bint\b", " ".join(rules)):
        rules.append(f"int ::= {_integers(language)}")
    if re.search(r"\bstring\b", " ".join(rules)):
        rules.append(_STRING)
    return "\n".join(rules) + "\n"


def _rule_name(function: str) -> str:
    return "call-" + function.replace("_", "-")


def _literal(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # GBNF strings escape as JSON does


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
        return "string"
    if arg.type == "bool":
        return '("True" | "False")'
    if arg.line:
        return "line-number"
    return "int" if arg.min is not None and arg.min >= 0 else '"-"? int'


def _line_numbers(lines: tuple[int, int] | None) -> str:
    if lines is None:
        return "line-number ::= int"
    first, last = lines
    return "line-number ::= " + " | ".join(f'"{number}"' for number in range(first, last + 1))


def _integers(language: Language) -> str:
    """Integers below the language's largest (fewer digits than it has), no sign."""
    return "[0-9]" + " [0-9]?" * (len(str(language.limits.max_int)) - 2)
