"""Cost is bounded by the sizes of the text and the program, shown by counting work and sizes, not by timing.

execute_chunk's `work` counts characters scanned or written: 2 * len(text) to find lines and join
what is left, then for each normalize one scan of the current text to count matches and, when it
applies, the pieces and the text it writes. Normalizations that do not grow the text therefore keep
work <= 3 * len(text) * (operations + 1); a growing one is refused past growth_factor * len(text) +
growth_extra_chars; line ranges are merged and clamped, never expanded. The parser tokenizes each
line at most once, never a line over max_line_chars, nothing of a program refused whole, and yields
at most one operation per call written.
"""

import pytest
from conftest import sample_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prox.execution import Action, Policy, Reason, execute_chunk, execute_programs
from prox.language import Category, lexer, load_language, parse_program

LIMITS = load_language().limits
WORK_PER_CHAR = 3  # execute_chunk: 2 * len(text) up front, at most 3 * len(result) per normalize
BASE = sample_rows()[0]["text"]  # 57 lines of real web text
PROPERTIES = settings(max_examples=100, deadline=None, database=None)


def chunk(text: str, program: str):
    return execute_chunk(text, parse_program(program, "chunk"), Policy(), LIMITS)


def text_of(copies: int) -> str:
    return "\n".join([BASE] * copies)


def program_of(count: int) -> str:
    """`count` operations that never grow the text: removals, same-length replacements, a missing source."""
    cycle = ['normalize("e", "E")', "remove_lines(line_start={i}, line_end={i})", 'normalize("E", "e")',
             'normalize("Posted on ", "")', 'normalize("not in the text", "x")']
    return "\n".join(cycle[i % len(cycle)].format(i=i) for i in range(count))


@pytest.mark.parametrize("count", [10, 20, 40])
def test_work_is_linear_in_text_size_times_operations(count):
    program = program_of(count)
    assert len(parse_program(program, "chunk").operations) == count
    work = {copies: chunk(text_of(copies), program).work for copies in (1, 2, 4, 8)}
    for copies, amount in work.items():
        assert amount <= WORK_PER_CHAR * len(text_of(copies)) * (count + 1)
    for copies in (1, 2, 4):
        assert 1.5 <= work[2 * copies] / work[copies] <= 2.5


@pytest.mark.parametrize("copies", [1, 4])
def test_doubling_the_operations_at_most_doubles_the_work(copies):
    work = [chunk(text_of(copies), program_of(count)).work for count in (10, 20, 40)]
    assert work[0] < work[1] <= 2 * work[0] and work[1] < work[2] <= 2 * work[1]


def test_normalize_chain_cannot_blow_up_the_text():
    text = "a" * 10_000
    result = chunk(text, "\n".join(['normalize("a", "aa")'] * 40))
    limit = LIMITS.growth_factor * len(text) + LIMITS.growth_extra_chars
    assert len(result.text) == 80_000 <= limit  # 10,000 -> 20,000 -> 40,000 -> 80,000, then refused
    assert len(result.operations) == 3
    refused = [d for d in result.diagnostics if d.category is Category.BAD_VALUE]
    assert [d.line for d in refused] == list(range(4, 41)) and all(d.counted for d in refused)
    assert result.errors == 37
    assert result.work <= WORK_PER_CHAR * len(text) + 40 * WORK_PER_CHAR * limit


def test_refused_growth_never_reaches_the_output():
    text = "a " * 5_000
    outcome = execute_programs(text, None, "\n".join(['normalize("a", "aa")'] * 40))
    assert (outcome.action, outcome.reason, outcome.text) == (Action.KEPT, Reason.TOO_MANY_ERRORS, text)


@PROPERTIES
@given(st.text("ab \n", max_size=50),
       st.lists(st.tuples(st.text("ab", min_size=1, max_size=3), st.text("ab", max_size=2_000)), max_size=12))
def test_no_normalize_chain_grows_the_text_past_the_limit(text, replacements):
    program = "\n".join(f"normalize({source!r}, {target!r})" for source, target in replacements)
    result = chunk(text, program)
    limit = LIMITS.growth_factor * len(text) + LIMITS.growth_extra_chars
    assert len(result.text) <= limit
    assert result.work <= WORK_PER_CHAR * len(text) + len(replacements) * WORK_PER_CHAR * limit


THREE_LINES = "one two three\nfour five six\nseven eight nine"


def test_huge_line_range_is_clamped_not_expanded():
    result = chunk(THREE_LINES, "remove_lines(line_start=0, line_end=100000000)")
    assert result.work <= WORK_PER_CHAR * len(THREE_LINES)
    assert result.work == chunk(THREE_LINES, "remove_lines(line_start=0, line_end=2)").work
    assert [d.category for d in result.diagnostics] == [Category.LINE_OUT_OF_RANGE] and result.errors == 1
    assert result.text == ""


def test_range_starting_past_the_end_removes_nothing_and_costs_nothing():
    result = chunk(THREE_LINES, "remove_lines(line_start=50000000, line_end=100000000)")
    assert result.work <= WORK_PER_CHAR * len(THREE_LINES)
    assert result.text == THREE_LINES and result.errors == 1


def test_many_huge_ranges_merge_into_one():
    count = LIMITS.max_statements
    program = "\n".join(f"remove_lines(line_start={i}, line_end=100000000)" for i in range(count))
    result = chunk(THREE_LINES, program)
    assert result.work <= WORK_PER_CHAR * len(THREE_LINES)
    assert result.errors == 1 and result.text == ""


@pytest.fixture
def tokenized(monkeypatch):
    """(characters, tokens) of every line the parser tokenizes during the test."""
    seen = []
    original = lexer.tokenize

    def counting(line):
        tokens = original(line)
        seen.append((len(line), len(tokens)))
        return tokens

    monkeypatch.setattr(lexer, "tokenize", counting)
    return seen


def test_line_over_the_limit_is_refused_without_tokenizing(tokenized):
    valid = "remove_lines(line_start=0, line_end=0)"
    long_number = "1" * (load_language().limits.max_line_chars + 1)
    program = parse_program("remove_lines(line_start=" + long_number + ", line_end=0)\n" + valid, "chunk")
    assert [(d.category, d.line, d.counted) for d in program.diagnostics] == [(Category.OVER_LIMIT, 1, True)]
    assert len(program.operations) == 1
    assert all(length <= load_language().limits.max_line_chars for length, _ in tokenized)


@pytest.mark.parametrize("program", [
    "keep_chunk()\n" * 100_000,  # over max_program_chars
    "keep_chunk()\n" * (LIMITS.max_statements + 1),  # over max_statements
], ids=["characters", "statements"])
def test_program_refused_whole_is_not_tokenized(program, tokenized):
    assert parse_program(program, "chunk").refused
    assert tokenized == []


def test_tokens_are_bounded_by_the_program_size(tokenized):
    program = "\n".join(["x,(" * 33] * LIMITS.max_statements)  # 999,999 characters, one token each
    assert len(program) <= LIMITS.max_program_chars
    parsed = parse_program(program, "chunk")
    assert parsed.operations == () and len(parsed.diagnostics) == LIMITS.max_statements
    assert len(tokenized) <= LIMITS.max_statements  # at most once per statement (repeated lines are remembered)
    assert sum(tokens for _, tokens in tokenized) <= len(program)


ANY_LINES = st.lists(st.text(st.characters(exclude_categories=()), max_size=200), max_size=20).map("\n".join)


@settings(PROPERTIES, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(program=ANY_LINES)
def test_tokens_never_outnumber_characters(tokenized, program):
    tokenized.clear()
    parse_program(program, "chunk")
    assert all(tokens <= characters for characters, tokens in tokenized)
    assert sum(characters for characters, _ in tokenized) <= len(program)


CALLS = ["remove_lines(line_start=0, line_end=1)", "remove_lines(2, 3)", "remove_lines(all=True)",
         'normalize("a")', "keep_chunk()", "keep_chunk(", "drop_doc()", "remove_lines(line_start=x)", "foo()",
         "keep_chunk() keep_chunk()"]


@PROPERTIES
@given(st.lists(st.sampled_from(CALLS), max_size=40), st.sampled_from(["\n", "; ", ";", "\n\n"]))
def test_a_program_of_m_calls_yields_at_most_m_operations(calls, separator):
    program = parse_program(separator.join(calls), "chunk")
    assert len(program.operations) <= len(calls)


def test_max_statements_is_the_most_operations_a_program_can_have():
    pairs = "keep_chunk(); keep_chunk()\n" * (LIMITS.max_statements // 2)
    at_limit = parse_program(pairs, "chunk")
    assert not at_limit.refused and len(at_limit.operations) == LIMITS.max_statements
    over = parse_program(pairs + "keep_chunk()", "chunk")
    assert over.refused and over.operations == ()
    assert [d.category for d in over.diagnostics] == [Category.OVER_LIMIT]
