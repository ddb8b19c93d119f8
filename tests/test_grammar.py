"""The language's grammar for --constrained (prox/language/grammar.py), with llguidance (what vLLM and the
transformers engine constrain with) and the published refiners' tokenizer:
- the programs prox writes, and the stored ones written so, are accepted; line numbers outside the
  chunk, other spellings, unfinished calls and strings over the language's bound are not;
- whatever a walk of random allowed tokens ends with, the way a random model would write under the
  grammar, parses with no diagnostics, with line numbers in the chunk;
- a function added to the language is in the grammar with no other change.
"""

import random
from pathlib import Path

import pytest
import yaml
from conftest import sample_rows

from prox.language import load_language, parse_program
from prox.language.grammar import program_grammar, without_line_numbers
from prox.language.spec import language_from_dict

llguidance = pytest.importorskip("llguidance", reason="llguidance comes with vLLM's CPU build (make test installs it)")


@pytest.fixture(scope="module")
def compiler(llama_tokenizer):
    """llguidance's view of the tokenizer (what grammars are compiled against)."""
    from prox.engines.constraint import llguidance_tokenizer

    return llguidance_tokenizer(llama_tokenizer, 32000)


def matcher(compiler, grammar: str):
    return llguidance.LLMatcher(compiler, llguidance.LLMatcher.grammar_from_lark(grammar))


def accepts(compiler, grammar: str, text: str) -> bool:
    tokens = compiler.greedy_tokenize(text)
    program = matcher(compiler, grammar)
    return program.validate_tokens(tokens) == len(tokens) and program.consume_tokens(tokens) and program.is_accepting()


def clean_lines(program: str) -> list[str]:
    parsed = parse_program(program, "chunk")
    assert not parsed.diagnostics
    return [op.call for op in parsed.operations]


def test_programs_written_as_prox_writes_them_are_accepted(compiler):
    stored = [row["metadata"]["chunk_program"] for row in sample_rows() if row["metadata"]["chunk_program"]]
    written = [program for program in stored if not parse_program(program, "chunk").diagnostics
               and clean_lines(program) == program.split("\n")]
    assert len(written) >= 10
    for program in written:
        assert accepts(compiler, program_grammar("chunk"), program), program
    assert accepts(compiler, program_grammar("chunk", (0, 5)), ' remove_lines(line_start=0, line_end=5)\n'
                   'normalize(source_str="a \\"b\\"\\n", target_str="")\nnormalize(source_str="x")\nkeep_chunk()\n')
    assert accepts(compiler, program_grammar("chunk", (40, 60)), "remove_lines(all=True)")
    assert accepts(compiler, program_grammar("chunk", (40, 60)), f'normalize(source_str="{"é" * 128}")')
    for decision in ("drop_doc()", " keep_doc()"):
        assert accepts(compiler, program_grammar("doc"), decision)


@pytest.mark.parametrize("program", [
    "remove_lines(line_start=4, line_end=9)",  # line 4 is not in the chunk
    "remove_lines(line_start=5, line_end=11)",  # nor line 11
    "remove_lines(5, 6)", "remove_lines(line_start=5,line_end=6)", "normalize(source_str='a')",
    'normalize(target_str="", source_str="a")', 'normalize(source_str="\\x00")', "remove_lines(all=False)",
    "remove_lines(line_start=5, line_end=6", "keep_chunk()\n\nkeep_chunk()", "print(1)", "keep_doc()",
    f'normalize(source_str="{"x" * 129}")',  # strings of at most 128 characters (language.yaml)
])
def test_other_programs_are_refused(compiler, program):
    assert not accepts(compiler, program_grammar("chunk", (5, 10)), program)


def test_a_doc_program_is_one_call(compiler):
    for program in ("keep_doc()\nkeep_doc()", "keep_doc", "keep_chunk()", "drop_doc(x)"):
        assert not accepts(compiler, program_grammar("doc"), program)


@pytest.fixture(scope="module")
def quote_tokens(llama_tokenizer):
    """The tokens with a double quote in them: a walk picks among them often, so strings end."""
    import torch

    return torch.tensor(['"' in piece for piece in llama_tokenizer.convert_ids_to_tokens(list(range(32000)))])


def allowed_tokens(bitmask):
    """The bitmask's tokens as booleans (32 tokens to an int32, lowest bit first)."""
    import torch

    bits = (bitmask[0].unsqueeze(-1) >> torch.arange(32, dtype=torch.int32)) & 1
    return bits.flatten()[:32000].bool()


def random_walk(compiler, tokenizer, quote_tokens, grammar: str, rng: random.Random) -> str | None:
    """The text of random allowed tokens until the grammar may end (then a stop, half the time), or None."""
    import llguidance.torch

    program = matcher(compiler, grammar)
    bitmask = llguidance.torch.allocate_token_bitmask(1, 32000)
    tokens: list[int] = []
    for _ in range(200):
        llguidance.torch.fill_next_token_bitmask(program, bitmask, 0)
        allowed = allowed_tokens(bitmask)
        may_stop = bool(allowed[tokenizer.eos_token_id])
        allowed[tokenizer.eos_token_id] = False
        quoting = allowed & quote_tokens
        pool = (quoting if quoting.any() and rng.random() < 0.2 else allowed).nonzero().flatten()
        if may_stop and (len(pool) == 0 or rng.random() < 0.5):
            return tokenizer.decode(tokens).strip(" ")
        choice = int(pool[rng.randrange(len(pool))])
        assert program.consume_token(choice)
        tokens.append(choice)
    return None


@pytest.mark.parametrize("level, lines", [("doc", None), ("chunk", (0, 12)), ("chunk", (37, 140))])
def test_what_the_grammar_accepts_parses_with_no_diagnostics(compiler, llama_tokenizer, quote_tokens, level, lines):
    rng = random.Random(20240917)
    grammar = program_grammar(level, lines)
    programs = [random_walk(compiler, llama_tokenizer, quote_tokens, grammar, rng) for _ in range(20)]
    finished = [program for program in programs if program is not None]
    assert len(finished) >= 15
    for program in finished:
        parsed = parse_program(program, level)
        assert parsed.operations and not parsed.diagnostics, program
        for op in parsed.operations:
            for number in (getattr(op, "line_start", None), getattr(op, "line_end", None)):
                assert number is None or lines[0] <= number <= lines[1]


def test_a_function_added_to_the_language_is_in_its_grammar(compiler):
    raw = yaml.safe_load((Path(__file__).parents[1] / "programs" / "language.yaml").read_text(encoding="utf-8"))
    raw["levels"]["doc"]["drop_doc"]["forms"].append({"operation": "DropDoc", "args": []})
    raw["levels"]["chunk"]["remove_line"] = {"forms": [{"operation": "RemoveLines", "args": [
        {"name": "line_start", "type": "int", "min": 0, "line": True},
        {"name": "line_end", "type": "int", "min": 0, "line": True}]}]}
    grammar = program_grammar("chunk", (3, 9), language_from_dict(raw))
    assert accepts(compiler, grammar, "remove_line(line_start=3, line_end=9)")
    assert not accepts(compiler, program_grammar("chunk", (3, 9)), "remove_line(line_start=3, line_end=9)")
    assert accepts(compiler, program_grammar("chunk", None, load_language()), "remove_lines(line_start=99999999, "
                   "line_end=0)")
    assert not accepts(compiler, program_grammar("chunk"), "remove_lines(line_start=999999999, line_end=0)")


def test_chunk_grammars_without_their_line_numbers_are_one_grammar():
    """What prox's vLLM plugin validates once for all chunks: only the listed line numbers go."""
    chunks = {without_line_numbers(program_grammar("chunk", lines)) for lines in [(1, 1), (3, 40), (120, 131)]}
    assert len(chunks) == 1
    assert 'LINE_NUMBER: "0"' in chunks.pop()
    for unchanged in (program_grammar("doc"), program_grammar("chunk", None)):
        assert without_line_numbers(unchanged) == unchanged
