"""Hostile model output is refused line by line and never runs, at the doc and the chunk level.

Each attack is parsed and then executed through execute_programs on a real web document. Shown for
each: no file appears (the attacks try to create one under tmp_path), nothing that runs code, opens
a file or starts a process is called, the hostile line yields no operation and leaves the text as
the valid lines alone make it, a valid call on the next line still works, and the diagnostic has
the category that fits. Programs over a limit of the language, or not text at all, are refused whole.
"""

import builtins
import os
import subprocess
from contextlib import contextmanager

import pytest
from conftest import sample_rows

from prox.execution import Action, Reason, execute_programs
from prox.language import Category, load_language, parse_program

DOC = sample_rows()[0]["text"]  # 57 lines, about 1,000 words of raw Common Crawl text
LIMITS = load_language().limits
LEVELS = ("chunk", "doc")
VALID = {"chunk": "remove_lines(line_start=0, line_end=0)", "doc": "drop_doc()"}

NOT_A_CALL, UNKNOWN, BAD_VALUE = Category.NOT_A_CALL, Category.UNKNOWN_FUNCTION, Category.BAD_VALUE

# name: (program line, category at chunk level, category at doc level); TARGET becomes a path under tmp_path.
ATTACKS = {
    "import": ("import os; os.system('touch TARGET')", NOT_A_CALL, NOT_A_CALL),
    "from_import": ("from os import system", NOT_A_CALL, NOT_A_CALL),
    "dunder_import": ("__import__('os').system('touch TARGET')", UNKNOWN, UNKNOWN),
    "os_system": ('os.system("touch TARGET")', UNKNOWN, UNKNOWN),
    "subprocess": ("__import__('subprocess').run(['touch', 'TARGET'])", UNKNOWN, UNKNOWN),
    "open": ("open('TARGET', 'w').write('x')", UNKNOWN, UNKNOWN),
    "eval": ("eval(\"open('TARGET', 'w')\")", UNKNOWN, UNKNOWN),
    "exec": ("exec(\"import os; os.system('touch TARGET')\")", UNKNOWN, UNKNOWN),
    "compile": ("compile(\"open('TARGET', 'w')\", 'x', 'exec')", UNKNOWN, UNKNOWN),
    "globals": ("globals()['__builtins__']['open']('TARGET', 'w')", UNKNOWN, UNKNOWN),
    "method_of_a_function": ("drop_doc.__call__()", UNKNOWN, UNKNOWN),
    "getattr": ("getattr(__builtins__, 'eval')(\"open('TARGET', 'w')\")", UNKNOWN, UNKNOWN),
    "exec_compile": ("exec(compile(\"open('TARGET', 'w')\", 'x', 'exec'))", UNKNOWN, UNKNOWN),
    "subclasses": ("().__class__.__bases__[0].__subclasses__()", NOT_A_CALL, NOT_A_CALL),
    "str_mro": ("''.__class__.__mro__[1].__subclasses__()", NOT_A_CALL, NOT_A_CALL),
    "function_globals": ("normalize.__globals__['os'].system('touch TARGET')", NOT_A_CALL, NOT_A_CALL),
    "builtins_dict": ("__builtins__.__dict__['open']('TARGET', 'w')", NOT_A_CALL, NOT_A_CALL),
    "lambda": ("lambda: open('TARGET', 'w')", NOT_A_CALL, NOT_A_CALL),
    "lambda_called": ("(lambda: __import__('os').system('touch TARGET'))()", NOT_A_CALL, NOT_A_CALL),
    "assignment": ("x = open('TARGET', 'w')", NOT_A_CALL, NOT_A_CALL),
    "with": ("with open('TARGET', 'w') as f: f.write('x')", NOT_A_CALL, NOT_A_CALL),
    "decorator": ("@open('TARGET', 'w')", NOT_A_CALL, NOT_A_CALL),
    "fstring": ("normalize(source_str=f\"{__import__('os').system('touch TARGET')}\")", BAD_VALUE, UNKNOWN),
    "nested_call": ("remove_lines(line_start=__import__('os').system('touch TARGET'), line_end=2)",
                    BAD_VALUE, UNKNOWN),
    "call_as_target": ("normalize(source_str=\"Home\", target_str=open('TARGET', 'w'))", BAD_VALUE, UNKNOWN),
    "star_arguments": ("normalize(*open('TARGET', 'w'))", Category.SYNTAX, UNKNOWN),
    "doc_call_with_code": ("drop_doc(open('TARGET', 'w'))", UNKNOWN, BAD_VALUE),
}
FILED = [(name, level, cats[i]) for name, (_, *cats) in ATTACKS.items() for i, level in enumerate(LEVELS)]


def run(program, level):
    """execute_programs on DOC with `program` as the doc or the chunk program."""
    return execute_programs(DOC, program, None) if level == "doc" else execute_programs(DOC, None, program)


def hostile_line_diagnostics(hostile: str, level: str) -> list:
    """Checks that `hostile` has no effect alone and none before a valid line; returns its diagnostics."""
    alone = parse_program(hostile, level)
    assert alone.operations == () and not alone.refused
    outcome = run(hostile, level)
    assert (outcome.text, outcome.action, outcome.operations) == (DOC, Action.KEPT, ())

    mixed = parse_program(hostile + "\n" + VALID[level], level)
    assert [op.line for op in mixed.operations] == [2]
    assert {d.line for d in mixed.diagnostics} == {1}
    expected, outcome = run(VALID[level], level), run(hostile + "\n" + VALID[level], level)
    assert outcome.action in (Action.MODIFIED, Action.DROPPED)
    assert (outcome.text, outcome.action, outcome.reason, outcome.operations) == (
        expected.text, expected.action, expected.reason, expected.operations)
    return list(mixed.diagnostics)


def counts_errors(line: str, level: str) -> bool:
    return level == "chunk" and line.startswith(("remove_lines(", "normalize("))


@contextmanager
def spying():
    """Yields the list of calls made inside the block to what runs code, opens files or starts processes."""
    seen = []
    with pytest.MonkeyPatch.context() as patch:
        for owner, name in [(builtins, "eval"), (builtins, "exec"), (builtins, "compile"), (builtins, "open"),
                            (os, "system"), (os, "popen"), (subprocess, "Popen"), (builtins, "__import__")]:
            original = getattr(owner, name)

            def spy(*args, _original=original, _name=name, **kwargs):
                seen.append((_name, args[:1]))
                return _original(*args, **kwargs)

            patch.setattr(owner, name, spy)
        yield seen


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("name", ATTACKS)
def test_code_in_a_program_never_runs_and_changes_nothing(name, level, tmp_path):
    target = tmp_path / "pwned"
    with spying() as calls:
        hostile_line_diagnostics(ATTACKS[name][0].replace("TARGET", str(target)), level)
    assert calls == []
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_the_spy_sees_code_that_runs(tmp_path):
    target = tmp_path / "pwned"
    with spying() as calls:
        eval(compile(f"open({str(target)!r}, 'w').close()", "<attack>", "eval"))  # noqa: S307
    assert [name for name, _ in calls] == ["compile", "eval", "open"] and target.exists()


@pytest.mark.parametrize(("name", "level", "category"), FILED)
def test_code_in_a_program_has_the_fitting_category(name, level, category):
    line = ATTACKS[name][0].replace("TARGET", "/nonexistent/pwned")
    (diagnostic,) = parse_program(line, level).diagnostics
    expected = (category, 1, counts_errors(line, level))
    assert (diagnostic.category, diagnostic.line, diagnostic.counted) == expected


@pytest.mark.parametrize("line", ["remove_lines.__globals__", "normalize.__class__.__mro__", "os.system"])
@pytest.mark.parametrize("level", LEVELS)
def test_attribute_chain_without_a_call_is_not_a_call(line, level):
    assert [d.category for d in parse_program(line, level).diagnostics] == [NOT_A_CALL]


@pytest.mark.parametrize(("level", "template", "category"), [
    ("chunk", "remove_lines(line_start=0, line_end=0); __import__('os').system('touch TARGET')", UNKNOWN),
    ("chunk", "remove_lines(line_start=0, line_end=0) if os.system('touch TARGET') else 0", Category.SYNTAX),
    ("doc", "drop_doc(); import os; os.system('touch TARGET')", Category.SYNTAX),
])
def test_code_after_a_valid_call_on_the_same_line_is_ignored(level, template, category, tmp_path):
    target = tmp_path / "pwned"
    with spying() as calls:
        program = parse_program(template.replace("TARGET", str(target)), level)
        outcome = run(template.replace("TARGET", str(target)), level)
    assert [d.category for d in program.diagnostics] == [category]
    expected = run(VALID[level], level)
    assert (outcome.text, outcome.action, outcome.operations) == (
        expected.text, expected.action, expected.operations)
    assert calls == [] and not target.exists()


HUGE_INT = "9" * 5000
OVER = LIMITS.max_line_chars + 1000  # a line past the language's limit
UNDER = LIMITS.max_line_chars - 1000  # a long line still within it
LINE_CASES = [  # (level, program line, category, counted)
    ("chunk", f"remove_lines(line_start=0, line_end={HUGE_INT})", BAD_VALUE, True),
    ("chunk", f"remove_lines(line_start=-{HUGE_INT}, line_end=0)", BAD_VALUE, True),
    ("chunk", f"remove_lines(line_start=0, line_end={LIMITS.max_int + 1})", BAD_VALUE, True),
    ("doc", f"drop_doc({HUGE_INT})", BAD_VALUE, False),
    ("chunk", 'normalize(source_str="' + "a" * OVER + '")', Category.OVER_LIMIT, True),
    ("doc", 'drop_doc("' + "a" * OVER + '")', Category.OVER_LIMIT, False),
    ("chunk", 'normalize(source_str="' + "a" * (LIMITS.max_string_chars + 1) + '")', BAD_VALUE, True),
    ("chunk", 'normalize(source_str="Home", target_str="' + "b" * 12_000 + '")', BAD_VALUE, True),
    ("doc", 'drop_doc("' + "a" * 12_000 + '")', Category.WRONG_ARGUMENTS, False),
    ("chunk", "(" * OVER, Category.OVER_LIMIT, False),
    ("doc", "(" * OVER, Category.OVER_LIMIT, False),
    ("chunk", "(" * UNDER, NOT_A_CALL, False),
    ("doc", "[" * UNDER, NOT_A_CALL, False),
    ("chunk", "remove_lines(" * (OVER // 13), Category.OVER_LIMIT, True),
    ("chunk", "remove_lines(" * 1_500, BAD_VALUE, True),
    ("doc", "drop_doc(" * (OVER // 9), Category.OVER_LIMIT, False),
    ("doc", "drop_doc(" * 1_500, BAD_VALUE, False),
]


@pytest.mark.parametrize(("level", "line", "category", "counted"), LINE_CASES,
                         ids=[f"{c[0]}-{c[1][:20]}-{len(c[1])}" for c in LINE_CASES])
def test_oversized_line_is_refused_alone(level, line, category, counted):
    diagnostics = hostile_line_diagnostics(line, level)
    assert [(d.category, d.counted) for d in diagnostics] == [(category, counted)]


CONTROL_CASES = [  # (level, program line, category, counted)
    ("chunk", 'normalize(source_str="Home\x00")', BAD_VALUE, True),
    ("chunk", "\x00", BAD_VALUE, False),
    ("chunk", "remove_lines(line_start=0,\x00 line_end=1)", BAD_VALUE, True),
    ("chunk", 'normalize(source_str="Home\x07")', BAD_VALUE, True),
    ("chunk", "\x07remove_lines(line_start=1, line_end=1)", BAD_VALUE, False),
    ("chunk", 'normalize(source_str="Home", target_str="\\x00")', BAD_VALUE, True),
    ("chunk", 'normalize(source_str="Home", target_str="a\\0b")', BAD_VALUE, True),
    ("chunk", 'normalize(source_str="Home", target_str="\\u0000")', BAD_VALUE, True),
    ("chunk", 'normalize(source_str="Home", target_str="\\U00000000")', BAD_VALUE, True),
    ("chunk", 'normalize(source_str="Home\\000")', BAD_VALUE, True),
    ("doc", "drop_doc()\x00", BAD_VALUE, False),
    ("doc", "\x07drop_doc()", BAD_VALUE, False),
    ("doc", "\x1b[31mdrop_doc()", BAD_VALUE, False),
    ("chunk", 'normalize(source_str="\\ud800")', BAD_VALUE, True),
    ("chunk", 'normalize(source_str="Home", target_str="\\udc80")', BAD_VALUE, True),
    ("chunk", 'normalize(source_str="Home", target_str="\\ud83d\\ude00")', BAD_VALUE, True),
    ("chunk", 'normalize(source_str="Home", target_str="\ud800")', BAD_VALUE, True),
    ("chunk", "\ud800", NOT_A_CALL, False),
    ("chunk", "\ud800remove_lines(line_start=1, line_end=1)", NOT_A_CALL, False),
    ("doc", "\udc80drop_doc()", NOT_A_CALL, False),
]


@pytest.mark.parametrize(("level", "line", "category", "counted"), CONTROL_CASES,
                         ids=[f"{c[0]}-{ascii(c[1])}" for c in CONTROL_CASES])
def test_nul_control_characters_and_lone_surrogates_are_refused(level, line, category, counted):
    diagnostics = hostile_line_diagnostics(line, level)
    assert [(d.category, d.counted) for d in diagnostics] == [(category, counted)]


@pytest.mark.parametrize("line", ['remove_lines(line_start="\\ud800", line_end=1)',
                                  'remove_lines(all="\\udc80")'])
def test_record_of_an_ascii_program_is_valid_unicode(line):
    def encodes(text):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True

    assert line.isascii()
    outcome = execute_programs(DOC, None, line)
    assert all(encodes(d.message) for d in outcome.diagnostics)
    assert all(encodes(call) for call in outcome.operations)


def refused_whole(program, level) -> list:
    """Checks that `program` is refused whole and that nothing of it runs; returns its diagnostics."""
    parsed = parse_program(program, level)
    assert parsed.refused and parsed.operations == ()
    outcome = run(program, level)
    reason = Reason.PROGRAM_REFUSED if level == "chunk" else Reason.DOC_NO_DECISION
    assert (outcome.text, outcome.action, outcome.reason) == (DOC, Action.KEPT, reason)
    assert outcome.operations == () and outcome.words_after == outcome.words_before
    return [(d.category, d.line, d.counted) for d in parsed.diagnostics]


@pytest.mark.parametrize("level", LEVELS)
def test_program_over_the_character_limit_is_refused_whole(level):
    program = VALID[level] + "\n" + 'normalize(source_str="' + "a" * 2_000_000 + '")'
    assert len(program) > LIMITS.max_program_chars
    assert refused_whole(program, level) == [(Category.OVER_LIMIT, 0, True)]


@pytest.mark.parametrize(("level", "program"), [
    ("chunk", "\n".join(["remove_lines(line_start=0, line_end=0)"] * 50_000)),  # also over max_program_chars
    ("chunk", "\n".join(["remove_lines(0, 0)"] * 50_000)),
    ("chunk", "\n".join(["keep_chunk(); " * 1_000] * 11)),  # 11,000 operations on 11 lines
    ("doc", "\n".join(["drop_doc()"] * 50_000)),
], ids=["long-statements", "short-statements", "semicolons", "doc"])
def test_program_with_too_many_operations_is_refused_whole(level, program):
    assert refused_whole(program, level) == [(Category.OVER_LIMIT, 0, True)]


NOT_TEXT = [b"drop_doc()", 42, ["drop_doc()", VALID["chunk"]], {"program": "drop_doc()"}, 3.5, object()]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("program", NOT_TEXT, ids=lambda value: type(value).__name__)
def test_program_that_is_not_text_is_refused_whole(program, level):
    assert [(line, counted) for _, line, counted in refused_whole(program, level)] == [(0, True)]


def test_program_that_is_not_text_is_a_bad_value():
    assert [d.category for d in parse_program(b"drop_doc()", "doc").diagnostics] == [BAD_VALUE]


def test_no_program_is_not_a_refusal():
    assert parse_program(None, "chunk") == parse_program("", "chunk")
    outcome = execute_programs(DOC, None, None)
    assert (outcome.text, outcome.action, outcome.reason) == (DOC, Action.KEPT, Reason.NO_PROGRAM)
