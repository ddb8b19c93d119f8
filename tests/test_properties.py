"""Properties of the parser and the interpreter on generated input, checked with hypothesis.

Shown: the parser returns a Program for any text (arbitrary Unicode, near-valid calls, decoded
bytes) without falling back to its internal-error path; the canonical call text of every valid
operation parses back to the same operation; execute_programs accounts for every document (one
outcome, the input text unless modified, no words added except by normalize) and is a pure function.
"""

import dataclasses
from pathlib import Path

import pytest
import yaml
from conftest import sample_rows
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from prox.execution import Action, Outcome, Policy, Reason, execute_chunk, execute_programs
from prox.execution.chunk_level import words_replaced
from prox.execution.words import count_words
from prox.language import (
    Category,
    Diagnostic,
    DropDoc,
    KeepChunk,
    KeepDoc,
    Normalize,
    Program,
    RemoveAllLines,
    RemoveLines,
    load_language,
    parse_program,
)
from prox.language.spec import language_from_dict

LANGUAGE = load_language()
LIMITS = LANGUAGE.limits
LEVELS = ("doc", "chunk")
OPERATION_TYPES = {"doc": (DropDoc, KeepDoc), "chunk": (RemoveLines, RemoveAllLines, Normalize, KeepChunk)}
TEXTS = [row["text"] for row in sample_rows()]

PROPERTIES = settings(max_examples=150, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

FUNCTIONS = sorted({name for level in LANGUAGE.levels.values() for name in level.functions})
ARGUMENTS = sorted({arg.name for level in LANGUAGE.levels.values() for spec in level.functions.values()
                    for form in spec.forms for arg in form.args})
NAMES = [*FUNCTIONS, *ARGUMENTS, "line", "call", "True", "False", "None", "__import__", "os.system", "eval",
         "open", "f", "b", "lambda", "import", "x"]
ALL_CHARACTERS = st.characters(exclude_categories=())  # every category, surrogates and NUL included


def quoted(body: str, quote: str, closed: bool) -> str:
    return quote + body + (quote if closed else "")


integer_literals = st.one_of(st.integers(-20, 200), st.integers(-(10**40), 10**40)).map(str)
string_literals = st.builds(
    quoted,
    st.text(st.one_of(ALL_CHARACTERS, st.sampled_from(list("\"'\\,=()#; nxu0"))), max_size=20),
    st.sampled_from(['"', "'", '"""', "'''"]),
    st.booleans(),
)
literals = st.one_of(integer_literals, string_literals, st.sampled_from(NAMES),
                     st.sampled_from(["1.5", "0x10", "1e5", "1_000", "+7", "-0", "[]", "{}", "*", "**k"]))
arguments = st.one_of(literals, st.builds("{}={}".format, st.sampled_from(NAMES), literals),
                      st.builds("{} = {}".format, st.sampled_from(ARGUMENTS), literals))
separators = st.sampled_from([", ", ",", " ", ",,", " = ", ", )"])
calls = st.builds(
    lambda name, opening, args, sep, closing, tail: name + opening + sep.join(args) + closing + tail,
    st.sampled_from(NAMES),
    st.sampled_from(["(", "(", " (", "", "(("]),
    st.lists(arguments, max_size=4),
    separators,
    st.sampled_from([")", ")", ")", "", "))", ")("]),
    st.sampled_from(["", "", "; ", ";", "  # comment", " x", ".y", "; keep_chunk()", "\\"]),
)
program_lines = st.one_of(calls, st.lists(calls, min_size=2, max_size=3).map("; ".join),
                          st.text(ALL_CHARACTERS, max_size=30),
                          st.sampled_from(["```python", "```", "", "   "]))
programs = st.lists(program_lines, max_size=8).map("\n".join)

CODECS = [("utf-8", "replace"), ("utf-8", "surrogateescape"), ("latin-1", "strict"),
          ("utf-16-le", "surrogatepass"), ("cp1252", "replace")]
decoded_bytes = st.builds(lambda data, codec: data[: len(data) // 2 * 2].decode(*codec),
                          st.binary(max_size=400), st.sampled_from(CODECS))


def check_program(program: Program, text, level: str) -> None:
    """What every parse result satisfies, whatever the input."""
    assert isinstance(program, Program)
    assert isinstance(program.operations, tuple) and isinstance(program.diagnostics, tuple)
    assert all(isinstance(op, OPERATION_TYPES[level]) for op in program.operations)
    assert all(isinstance(d, Diagnostic) and isinstance(d.category, Category) for d in program.diagnostics)
    assert not any(d.message.startswith("parser error") for d in program.diagnostics), program.diagnostics
    assert program.errors == sum(d.counted for d in program.diagnostics)
    assert len(program.operations) <= LIMITS.max_statements
    if program.refused:
        assert program.operations == ()
    lines = text.split("\n") if isinstance(text, str) else []
    assert all(1 <= op.line <= len(lines) for op in program.operations)
    assert all(0 <= d.line <= len(lines) for d in program.diagnostics)


@PROPERTIES
@given(st.text(ALL_CHARACTERS), st.sampled_from(LEVELS))
def test_parser_returns_a_program_for_any_text(text, level):
    check_program(parse_program(text, level), text, level)


@PROPERTIES
@given(programs, st.sampled_from(LEVELS))
def test_parser_returns_a_program_for_near_valid_calls(text, level):
    check_program(parse_program(text, level), text, level)


@PROPERTIES
@given(decoded_bytes, st.sampled_from(LEVELS))
def test_parser_returns_a_program_for_decoded_bytes(text, level):
    check_program(parse_program(text, level), text, level)


@PROPERTIES
@given(st.one_of(st.binary(), st.integers(), st.floats(), st.lists(st.text()),
                 st.dictionaries(st.text(), st.text()), st.none(), st.booleans()), st.sampled_from(LEVELS))
def test_parser_returns_a_program_for_values_that_are_not_text(value, level):
    program = parse_program(value, level)
    check_program(program, value, level)
    assert program.operations == () and program.refused == (value is not None)


def reparsed(operation, level: str = "chunk"):
    """The only operation parsed from the operation's canonical call text."""
    program = parse_program(operation.call, level)
    assert program.diagnostics == (), program.diagnostics
    (again,) = program.operations
    return again


def parsed_once(text: str, level: str = "chunk"):
    program = parse_program(text, level)
    assert program.diagnostics == (), program.diagnostics
    (operation,) = program.operations
    return operation


LINE_NUMBERS = st.integers(0, LIMITS.max_int)
# Strings the parser accepts: no NUL and no lone surrogate (refused by design).
VALID_STRINGS = st.text(st.one_of(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
                                  st.sampled_from(list("\"'\\,=()#;\t\n\r "))), max_size=80)


@PROPERTIES
@given(LINE_NUMBERS, LINE_NUMBERS, st.booleans())
def test_remove_lines_call_parses_back_to_the_same_operation(start, end, positional):
    arguments = f"{start}, {end}" if positional else f"line_start={start}, line_end={end}"
    text = f"remove_lines({arguments})"
    operation = parsed_once(text)
    assert (type(operation), operation.line_start, operation.line_end) == (RemoveLines, start, end)
    assert reparsed(operation) == operation


@PROPERTIES
@given(VALID_STRINGS, VALID_STRINGS, st.sampled_from(["repr", "keywords", "double-quoted", "one-argument"]))
def test_normalize_call_parses_back_to_the_same_operation(source, target, style):
    def double_quoted(value):
        escaped = ("\\" + ch if ch in '\\"' else f"\\x{ord(ch):02x}" if ch < " " or ch == "\x7f" else ch
                   for ch in value)
        return '"' + "".join(escaped) + '"'

    text = {
        "repr": f"normalize({source!r}, {target!r})",
        "keywords": f"normalize(target_str={target!r}, source_str={source!r})",
        "double-quoted": f"normalize(source_str={double_quoted(source)}, target_str={double_quoted(target)})",
        "one-argument": f"normalize({source!r})",
    }[style]
    operation = parsed_once(text)
    expected = (Normalize, source, "" if style == "one-argument" else target)
    assert (type(operation), operation.source_str, operation.target_str) == expected
    assert reparsed(operation) == operation


@pytest.mark.parametrize(("text", "level", "kind"), [
    ("remove_lines(all=True)", "chunk", RemoveAllLines),
    ("remove_lines(True)", "chunk", RemoveAllLines),
    ("keep_chunk()", "chunk", KeepChunk),
    ("drop_doc()", "doc", DropDoc),
    ("keep_doc( )", "doc", KeepDoc),
])
def test_calls_without_values_parse_back_to_the_same_operation(text, level, kind):
    operation = parsed_once(text, level)
    assert type(operation) is kind and reparsed(operation, level) == operation


def test_normalize_with_del_character_parses_back():
    operation = parsed_once('normalize(source_str="a\\x7fb", target_str="c")')
    assert operation.source_str == "a\x7fb"
    assert reparsed(operation) == operation


def test_normalize_of_a_long_string_with_escapes_parses_back():
    operation = parsed_once('normalize(source_str="' + "\t" * 9_990 + '")')
    assert reparsed(operation) == operation


@st.composite
def documents_and_programs(draw):
    """A document (real or generated) with doc and chunk programs mixing valid calls about it and noise."""
    text = draw(st.one_of(st.sampled_from(TEXTS), st.text(ALL_CHARACTERS, max_size=300),
                          st.lists(st.sampled_from(["alpha", "beta gamma", "", " ", "delta, epsilon."]),
                                   max_size=40).map("\n".join)))
    last = len(text.split("\n")) + 2
    pieces = [p for p in text.replace("\n", " ").split(" ") if p] or ["x"]
    valid = st.one_of(
        st.builds("remove_lines(line_start={}, line_end={})".format,
                  st.integers(0, last), st.integers(0, last)),
        st.builds("normalize({!r}, {!r})".format, st.sampled_from(pieces),
                  st.one_of(st.just(""), st.sampled_from(pieces), VALID_STRINGS)),
        st.sampled_from(["keep_chunk()", "remove_lines(all=True)"]),
    )
    chunk = draw(st.one_of(st.none(), st.lists(st.one_of(valid, program_lines), max_size=8).map("\n".join)))
    doc = draw(st.one_of(st.none(), st.sampled_from(["keep_doc()", "drop_doc()", "keep_doc()\ndrop_doc()"]),
                         programs))
    return text, doc, chunk


DROPPED = {Reason.DOC_DROP, Reason.REMOVED_ALMOST_ALL, Reason.TOO_SHORT, Reason.EMPTY_TEXT}


@PROPERTIES
@given(documents_and_programs())
def test_every_document_is_accounted_for(case):
    text, doc, chunk = case
    outcome = execute_programs(text, doc, chunk)
    assert isinstance(outcome, Outcome) and isinstance(outcome.text, str)
    assert outcome.action in (Action.KEPT, Action.MODIFIED, Action.DROPPED)
    assert outcome.action is (Action.DROPPED if outcome.reason in DROPPED
                              else Action.MODIFIED if outcome.reason is Reason.REFINED else Action.KEPT)
    assert outcome.words_before == len(text.split())
    if outcome.action is Action.MODIFIED:
        assert outcome.text != text
        assert outcome.words_after == len(outcome.text.split()) > Policy().min_words
    else:
        assert outcome.text == text
    if not any(call.startswith("normalize(") for call in outcome.operations):
        assert outcome.words_after <= outcome.words_before
    assert len(outcome.text) <= LIMITS.growth_factor * len(text) + LIMITS.growth_extra_chars
    assert outcome.errors >= 0


@PROPERTIES
@given(documents_and_programs())
def test_execution_is_a_pure_function_of_its_inputs(case):
    text, doc, chunk = case
    first, second = execute_programs(text, doc, chunk), execute_programs(text, doc, chunk)
    assert first == second and first.record() == second.record()
    for program, level in ((doc, "doc"), (chunk, "chunk")):
        assert parse_program(program, level) == parse_program(program, level)


COPY_OF_LANGUAGE = language_from_dict(yaml.safe_load(
    (Path(__file__).parents[1] / "programs" / "language.yaml").read_text(encoding="utf-8")))
calls_of_many_shapes = st.lists(st.one_of(program_lines, st.builds(
    "{}({}{}{})".format, st.sampled_from(["remove_lines", "normalize", "keep_chunk", "drop_doc"]),
    st.sampled_from(["", "0, ", "True, ", '"a", ', "line_start=", "source_str=", "all="]),
    st.sampled_from(["1", "-1", "True", "False", '"x"', '""', "10**9", "100000001"]),
    st.sampled_from(["", ", 4", ", line_end=2", ', target_str=""', ', "b"', ", all=True", ", source_str=\"a\""]))),
    max_size=12).map("\n".join)


@PROPERTIES
@given(calls_of_many_shapes, st.sampled_from(LEVELS))
def test_remembered_lines_parse_as_a_fresh_parser_does(program, level):
    """The shipped language remembers what lines parsed to (and operations their calls); a copy of it
    does not."""
    remembered, fresh = parse_program(program, level), parse_program(program, level, COPY_OF_LANGUAGE)
    assert remembered == fresh
    assert [op.call for op in remembered.operations] == [op.call for op in fresh.operations]


canonical_values = st.one_of(st.integers(-(10**19), 10**19).map(str), st.sampled_from(["-0", "007", "True", "False"]),
                             st.text(st.one_of(ALL_CHARACTERS, st.sampled_from([*'"\\ ab', "\ud800", "\x00", "\x7f",
                                                                                 "\t", "\u2028"])), max_size=12)
                             .map('"{}"'.format))


@PROPERTIES
@given(st.sampled_from(["remove_lines(line_start={}, line_end={})", "remove_lines(all={})",
                        "normalize(source_str={}, target_str={})", "normalize(source_str={})"]),
       canonical_values, canonical_values)
@example("normalize(source_str={}, target_str={})", '"\ud800"', '""')
@example("normalize(source_str={})", '"a\\nb"', "")
@example("remove_lines(line_start={}, line_end={})", "-0", "100000001")
def test_calls_written_as_prox_writes_them_parse_as_a_fresh_parser_does(shape, first, second):
    """Such calls take a shortcut (one match, no binding) in the shipped language, not in a copy of it."""
    program = shape.format(first, second)
    remembered, fresh = parse_program(program, "chunk"), parse_program(program, "chunk", COPY_OF_LANGUAGE)
    assert remembered == fresh
    assert [op.call for op in remembered.operations] == [op.call for op in fresh.operations]


@PROPERTIES
@given(st.lists(st.sampled_from(TEXTS), min_size=1, max_size=3).map("\n".join), programs)
def test_reparsing_applied_calls_gives_the_same_operations(text, chunk):
    operations = parse_program(chunk, "chunk").operations
    assert set(execute_programs(text, None, chunk).operations) <= {op.call for op in operations}
    assert [dataclasses.replace(reparsed(op), line=op.line) for op in operations] == list(operations)


SPACED = st.text(st.sampled_from([*"ab.", " ", "\n", "\t", "\u00a0", "\u3000", "\x1c", "\x85"]), max_size=4)


@PROPERTIES
@given(st.one_of(st.text(ALL_CHARACTERS), st.lists(st.one_of(SPACED, st.text(ALL_CHARACTERS, max_size=8)), min_size=100)
                 .map("".join), st.sampled_from(TEXTS)))
def test_words_are_counted_as_str_split_counts_them(text):
    assert count_words(text) == len(text.split())


@PROPERTIES
@given(st.data())
def test_words_after_a_replacement_are_counted_from_its_occurrences(data):
    source, target = data.draw(SPACED.filter(bool)), data.draw(SPACED)
    text = "".join(data.draw(st.lists(st.one_of(st.just(source), SPACED), max_size=12)))  # occurrences that touch too
    words = words_replaced(text.split(source), source, target, len(text.split()))
    assert words is None or words == len(text.replace(source, target).split())


@PROPERTIES
@given(st.lists(st.sampled_from(["a b", "", " ", "c", "\r", "d\te f"]), min_size=1, max_size=30),
       st.lists(st.tuples(st.integers(0, 32), st.integers(0, 32)), max_size=5))
def test_removing_lines_keeps_the_other_lines_in_order(lines, ranges):
    """Lines are removed by their offsets in the text; the result is the kept lines joined again."""
    text = "\n".join(lines)
    program = "\n".join(f"remove_lines(line_start={start}, line_end={end})" for start, end in ranges)
    removed = {number for start, end in ranges for number in range(start, end + 1)}
    result = execute_chunk(text, parse_program(program, "chunk"), Policy(), LIMITS)
    assert result.text == "\n".join(line for number, line in enumerate(lines) if number not in removed)
    assert result.words_after == len(result.text.split())


@PROPERTIES
@given(documents_and_programs())
def test_chunk_results_count_the_words_they_leave(case):
    text, _, chunk = case
    result = execute_chunk(text, parse_program(chunk, "chunk"), Policy(), LIMITS)
    assert (result.words_before, result.words_after) == (len(text.split()), len(result.text.split()))
