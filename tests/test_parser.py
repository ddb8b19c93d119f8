"""The parser reads Python call syntax into typed operations and categorized diagnostics."""

from pathlib import Path

import pytest
import yaml

from prox.language import (
    KeepChunk,
    Normalize,
    RemoveAllLines,
    RemoveLines,
    load_language,
    parse_program,
)
from prox.language.spec import language_from_dict

SPEC = Path(__file__).parents[1] / "programs" / "language.yaml"


def only_operation(text: str, level: str = "chunk"):
    program = parse_program(text, level)
    assert program.diagnostics == (), program.diagnostics
    (operation,) = program.operations
    return operation


def categories(text: str, level: str = "chunk") -> list[str]:
    return [d.category.value for d in parse_program(text, level).diagnostics]


@pytest.mark.parametrize("text", [
    "remove_lines(line_start=3, line_end=5)",
    "remove_lines(3, 5)",
    "remove_lines(3, line_end=5)",
    "remove_lines( line_end = 5 , line_start = 3 , )",
    "remove_lines(line_start=+3, line_end=005)",
])
def test_keyword_and_positional_arguments(text):
    operation = only_operation(text)
    assert isinstance(operation, RemoveLines) and (operation.line_start, operation.line_end) == (3, 5)


@pytest.mark.parametrize(("literal", "value"), [
    ('"a, b = (c)"', "a, b = (c)"),
    ("'a, b = (c)'", "a, b = (c)"),
    ('"say \\"hi\\""', 'say "hi"'),
    ("'it\\'s'", "it's"),
    ('"it\'s"', "it's"),
    ("'say \"hi\"'", 'say "hi"'),
    ('"tab\\there\\nnewline"', "tab\there\nnewline"),
    ('"back\\\\slash"', "back\\slash"),
    ('"\\x41\\u00e9\\U0001F600\\101"', "Aé😀A"),
    ('"unknown \\d escape"', "unknown \\d escape"),
    ('"Ünïcödé ✓"', "Ünïcödé ✓"),
])
def test_string_literals_quotes_and_escapes(literal, value):
    operation = only_operation(f"normalize(source_str={literal}, target_str='')")
    assert isinstance(operation, Normalize) and operation.source_str == value


def test_normalize_target_defaults_to_empty():
    operation = only_operation('normalize("x")')
    assert operation == Normalize(line=1, function="normalize", source_str="x", target_str="")
    assert operation.call == 'normalize(source_str="x", target_str="")'


def test_remove_all_form_and_keep_chunk():
    assert isinstance(only_operation("remove_lines(all=True)"), RemoveAllLines)
    assert isinstance(only_operation("keep_chunk()"), KeepChunk)


def test_several_calls_on_a_line_and_comments():
    program = parse_program("remove_lines(0, 1); keep_chunk()  # navigation\n# a comment line", "chunk")
    assert [type(op) for op in program.operations] == [RemoveLines, KeepChunk]
    assert [d.category.value for d in program.diagnostics] == ["prose"]


def test_canonical_call_text_parses_back_to_the_same_operation():
    operation = only_operation("normalize('a \"b\", c = (d)\\n', \"e\")")
    assert only_operation(operation.call) == operation


def test_diagnostics_carry_the_program_line():
    program = parse_program("keep_chunk()\n\nfoo(1)\nremove_lines(line_start=1)", "chunk")
    assert [(d.line, d.category.value) for d in program.diagnostics] == [
        (3, "unknown_function"), (4, "wrong_arguments")]


@pytest.mark.parametrize(("text", "category"), [
    ("x = remove_lines(1, 2)", "not_a_call"),
    ("from os import system", "not_a_call"),
    ("Sure, here is the program for this chunk:", "prose"),
    ("```python", "prose"),
    ("remove_lines(1, 2, 3)", "wrong_arguments"),
    ("remove_lines(line_start=1, line_start=2)", "wrong_arguments"),
    ("remove_lines(line_start=1, line_end=2, extra=3)", "wrong_arguments"),
    ("remove_lines(line_start=1, 2)", "wrong_arguments"),
    ("remove_lines(line_start=1.5, line_end=2)", "bad_value"),
    ("remove_lines(line_start=-1, line_end=2)", "bad_value"),
    ("remove_lines(line_start=True, line_end=2)", "bad_value"),
    ("remove_lines(all=False)", "bad_value"),
    ("remove_lines(line_start=0, line_end=200000000)", "bad_value"),
    ("normalize(source_str=5)", "bad_value"),
    ("remove_lines(line_start=0, line_end=4", "truncated"),
    ('normalize(source_str="cut off', "truncated"),
    ("remove_lines(line_start=0 line_end=4)", "syntax"),
    ("remove_lines", "syntax"),
    ('normalize("a" "b")', "syntax"),
    ("drop_doc()", "unknown_function"),
    ("print('hi')", "unknown_function"),
])
def test_error_categories(text, category):
    assert categories(text) == [category]


def test_only_the_reference_functions_count_errors():
    program = parse_program("keep_chunk(1)\nfoo(\nremove_lines(x)\nnormalize(", "chunk")
    assert [(d.category.value, d.counted) for d in program.diagnostics] == [
        ("wrong_arguments", False), ("unknown_function", False), ("bad_value", True), ("truncated", True)]
    assert program.errors == 2


def test_doc_level_has_only_doc_functions():
    assert categories("remove_lines(0, 1)", "doc") == ["unknown_function"]
    assert categories("keep_doc()", "doc") == []


@pytest.mark.parametrize("text", [None, ""])
def test_no_program_has_no_operations(text):
    program = parse_program(text, "chunk")
    assert program.operations == () and program.diagnostics == ()


def test_the_parser_reads_its_functions_from_the_spec():
    raw = yaml.safe_load(SPEC.read_text())
    raw["levels"]["chunk"]["strip_lines"] = raw["levels"]["chunk"].pop("remove_lines")
    language = language_from_dict(raw)
    program = parse_program("strip_lines(1, 2)\nremove_lines(1, 2)", "chunk", language)
    assert isinstance(program.operations[0], RemoveLines)
    assert [d.category.value for d in program.diagnostics] == ["unknown_function"]


def test_spec_arguments_must_match_the_operation_fields():
    raw = yaml.safe_load(SPEC.read_text())
    raw["levels"]["chunk"]["normalize"]["forms"][0]["args"][0]["name"] = "source"
    with pytest.raises(ValueError, match="do not match"):
        language_from_dict(raw)


def test_shipped_spec_declares_both_levels_and_limits():
    language = load_language()
    assert set(language.levels) == {"doc", "chunk"}
    assert set(language.level("chunk").functions) == {"remove_lines", "normalize", "keep_chunk"}
    assert set(language.level("doc").functions) == {"drop_doc", "keep_doc"}
    assert language.limits.max_statements == 10000
