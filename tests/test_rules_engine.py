"""The rules engine: every rule on real documents, programs the parser takes without a word, the interpreter end to end.

Documents come from samples/: `WEB` (24 real web documents, by id) and `DCLM` (281 real documents
with a human label, by row). Where no real sample trips a rule, the case is built from real lines
plus the pattern, and says so.
"""

import gzip
import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from prox.engines import BUNDLED_TOKENIZER, EngineSpec, GenerationSettings, Prompt
from prox.engines.rules import DOC_RULES, FRAGMENT_RULES, LINE_RULES, chunk_program, failed_rule
from prox.engines.rules.line_rules import fragments, line_rule
from prox.engines.rules_engine import RulesEngine
from prox.execution import Action, Reason, execute_programs
from prox.language import DropDoc, Normalize, RemoveLines, parse_program
from prox.prompts import PromptBuilder, load_prompts

SAMPLES = Path(__file__).parents[1] / "samples"
WEB = {row["id"]: row["text"] for row in map(json.loads, (SAMPLES / "web-documents.jsonl").read_text().splitlines())}
DCLM = [json.loads(line) for line in gzip.open(SAMPLES / "dclm-labeled-281.jsonl.gz", "rt")]
ADVOCATES = "http://advocatesaz.org/tag/antibiotic-resistant-bacteria/"
CLAIHR = "http://claihr.ca/2015/02/12/2014-year-review-canadas-top-court-rejects-torture-tort/"
CLIZBEATS = "http://clizbeats.com/warner-music-group-strengthens-global-technology-data-expertise-9821/"
BUFVC = "http://bufvc.ac.uk/allbufvc/search.php?q=Discussion&sort=relevance"
GROOVE = "http://groovenotes.org/tag/duke-ellington/"
BOOKING = "http://eeme.ucd.ie/mrbs/edit_entry.php?room=18&area=4&hour=12&minute=30&year=2022&month=08&day=05"
SETTINGS = GenerationSettings(max_new_tokens=256)


def dclm(row: int) -> str:
    return DCLM[row]["text"]


def line(text: str, number: int) -> str:
    return text.split("\n")[number]


CLEAN = dclm(129)  # labelled keep, passes every rule
LOREM = "Lorem ipsum dolor sit amet, consectetur adipiscing elit."  # the placeholder; no sample has it

# rule name -> (a document it drops, a document it keeps)
DOC_CASES = {
    "gopher_word_count": (dclm(0), CLEAN),
    "gopher_mean_word_length": (line(WEB[BOOKING], 2), CLEAN),  # a real calendar line alone, mean length 2.5
    "gopher_symbol_ratio": ("\n".join(x for x in dclm(13).split("\n") if "#" in x), dclm(98)),  # its '#' lines
    "gopher_bullet_lines": ("\n".join(x for x in dclm(138).split("\n") if x.startswith("•")), dclm(138)),
    "gopher_ellipsis_lines": (dclm(43), WEB[CLIZBEATS]),
    "gopher_alpha_words": (dclm(18), CLEAN),
    "gopher_stop_words": (dclm(57), CLEAN),
    "c4_lorem_ipsum": (CLEAN + "\n" + LOREM, CLEAN),  # built: a real document plus the placeholder
    "c4_curly_bracket": (dclm(255), dclm(149)),  # 149 has a "{" outside the lines C4 keeps
    "c4_sentences": (dclm(1), CLEAN),
    "fineweb_line_punctuation": (dclm(6), CLEAN),
    "fineweb_short_lines": (dclm(19), CLEAN),
    "fineweb_duplicate_lines": (dclm(28), CLEAN),
    "fineweb_list_ratio": (dclm(112), CLEAN),
    "gopher_duplicate_lines": (dclm(82), CLEAN),
    # built: a real document's lines as paragraphs, the page twice over
    "gopher_duplicate_paragraphs": ("\n\n".join(CLEAN.split("\n") * 2), "\n\n".join(CLEAN.split("\n"))),
    "gopher_top_ngrams": (dclm(127), CLEAN),
    "gopher_duplicate_ngrams": (WEB[BUFVC], CLEAN),
}

# rule name -> (a real line it removes, a real line it keeps)
LINE_CASES = {
    "lorem_ipsum": (LOREM, line(CLEAN, 0)),  # built: no sample has the placeholder
    "cookie_notice": (line(dclm(11), 48), line(dclm(210), 17)),
    "javascript_warning": ("Please enable JavaScript to view the comments powered by Disqus.",  # built: none in samples
                           line(dclm(280), 19)),
    "subscription": (line(dclm(12), 1), line(dclm(122), 7)),
    "social": (line(WEB["http://eattoyourmeter.org/cancerous-diseases/"], 4), line(dclm(31), 120)),
    "login": (line(dclm(11), 2), line(dclm(214), 15)),
    "copyright": (line(WEB[CLAIHR], 22), line(dclm(89), 3)),
    "policy_links": (line(dclm(80), 1), line(dclm(31), 164)),
    "read_more": (line(WEB[CLIZBEATS], 37), line(dclm(81), 16)),
}

# rule name -> (a line with boilerplate inside, the boilerplate, a real line without it)
FRAGMENT_CASES = {
    "read_more_tail": (line(WEB[ADVOCATES], 17), " Continue reading →", line(WEB[ADVOCATES], 16)),
    "click_here_tail": (line(dclm(87), 23), " Click here to post the first comment.", line(dclm(87), 1)),
    # built: real lines plus the residue of an ad script and of e-mail obfuscation, which no sample has
    "ad_script": (line(CLEAN, 0) + " (adsbygoogle = window.adsbygoogle || []).push({});",
                  "(adsbygoogle = window.adsbygoogle || []).push({});", line(CLEAN, 0)),
    "email_protected": ("Questions? Contact [email protected] for details.", "[email protected]", line(dclm(23), 1)),
}


@pytest.fixture(scope="module")
def builder() -> PromptBuilder:
    return PromptBuilder(load_prompts("web"), AutoTokenizer.from_pretrained(BUNDLED_TOKENIZER))


def doc_program(text: str) -> str:
    return RulesEngine("doc").generate([Prompt(subject=text)], SETTINGS)[0].text


def chunk_programs(builder: PromptBuilder, texts: list[str]) -> list[list[tuple[str, str]]]:
    """(chunk subject, program) per chunk of each text, all prompts in one call as the pipeline sends them."""
    chunks = [builder.chunk_prompts(text) for text in texts]
    prompts = [Prompt(text=c.text, subject=c.chunk) for doc in chunks for c in doc]
    outputs = iter(RulesEngine("chunk").generate(prompts, SETTINGS))
    return [[(c.chunk, next(outputs).text) for c in doc] for doc in chunks]


def removed_lines(program: str) -> set[int]:
    return {n for op in parse_program(program, "chunk").operations if isinstance(op, RemoveLines)
            for n in range(op.line_start, op.line_end + 1)}


def test_every_rule_has_cases():
    assert set(DOC_CASES) == {rule.__name__ for rule in DOC_RULES}
    assert set(LINE_CASES) == {rule.name for rule in LINE_RULES}
    assert set(FRAGMENT_CASES) == {rule.name for rule in FRAGMENT_RULES}


@pytest.mark.parametrize("rule", DOC_RULES, ids=lambda rule: rule.__name__)
def test_doc_rule(rule):
    caught, kept = DOC_CASES[rule.__name__]
    assert failed_rule(caught, [rule])[0] == rule.__name__
    assert failed_rule(kept, [rule]) is None


@pytest.mark.parametrize("rule", LINE_RULES, ids=lambda rule: rule.name)
def test_line_rule(rule):
    caught, kept = LINE_CASES[rule.name]
    assert line_rule(caught, (rule,)) is rule
    assert line_rule(kept, (rule,)) is None


@pytest.mark.parametrize("rule", FRAGMENT_RULES, ids=lambda rule: rule.name)
def test_fragment_rule(rule):
    text, fragment, kept = FRAGMENT_CASES[rule.name]
    assert fragments(text) == [(rule, fragment)]
    assert fragments(kept) == []


def test_doc_program_names_the_first_failing_rule_in_its_comment():
    program = doc_program(dclm(1))
    name, reason = failed_rule(dclm(1))
    assert program == f"drop_doc()  # {name}: {reason}"
    assert doc_program(CLEAN) == "keep_doc()"
    parsed = parse_program(program, "doc")
    assert [type(op) for op in parsed.operations] == [DropDoc] and not parsed.diagnostics


def test_navigation_runs_at_the_edges_and_in_the_middle(builder):
    [[(_, program)]] = chunk_programs(builder, [WEB[CLAIHR]])
    removed = removed_lines(program)
    assert {0, 1, 2, 3} <= removed  # the site menu before the title
    assert {20, 21, 22} <= removed  # the footer: contact, address, copyright
    assert not removed & set(range(4, 15))  # title, byline and the article
    [(_, first), *_] = chunk_programs(builder, [WEB[ADVOCATES]])[0]
    assert set(range(0, 6)) <= removed_lines(first) and 6 not in removed_lines(first)
    assert set(range(27, 47)) <= removed_lines(first)  # the category list mid-page
    assert "navigation: short lines without terminal punctuation" in first


def test_a_short_run_is_removed_only_at_the_document_end(builder):
    text = WEB["dclm-17"]  # ends with "Thank you so much. :)" and "Post a Comment"
    [prompt] = builder.chunk_prompts(text)
    last = len(text.split("\n")) - 1
    assert {last - 1, last} <= removed_lines(chunk_program(prompt.chunk, ends_document=True))
    assert not {last - 1, last} & removed_lines(chunk_program(prompt.chunk, ends_document=False))


def test_list_items_are_content_not_navigation(builder):
    [[(_, program)]] = chunk_programs(builder, [dclm(87)])  # a list of birthstones, "- January: Garnet"...
    assert not removed_lines(program) & set(range(7, 19))


def test_the_engine_is_deterministic(builder):
    texts = [*WEB.values(), *(row["text"] for row in DCLM[:60])]
    assert chunk_programs(builder, texts) == chunk_programs(builder, texts)
    doc = RulesEngine("doc")
    prompts = [Prompt(subject=t) for t in texts]
    assert doc.generate(prompts, SETTINGS) == doc.generate(prompts, SETTINGS)


def test_every_program_parses_without_diagnostics_and_stays_in_its_chunk(builder):
    texts = [*WEB.values(), *(row["text"] for row in DCLM)]
    for completion in RulesEngine("doc").generate([Prompt(subject=t) for t in texts], SETTINGS):
        parsed = parse_program(completion.text, "doc")
        assert len(parsed.operations) == 1 and not parsed.diagnostics, completion.text
    for document in chunk_programs(builder, texts):
        for subject, program in document:
            parsed = parse_program(program, "chunk")
            assert parsed.operations and not parsed.diagnostics, program
            numbers = [int(raw[1 : raw.index("]")]) for raw in subject.split("\n")]
            for op in parsed.operations:
                if isinstance(op, RemoveLines):
                    assert numbers[0] <= op.line_start <= op.line_end <= numbers[-1]
                if isinstance(op, Normalize):
                    assert any(op.source_str in raw for raw in subject.split("\n")), op.source_str


def test_line_numbers_past_999(builder):
    text = "\n".join([*WEB.values(), *WEB.values()])  # 1443 real lines: numbers of four digits
    document = chunk_programs(builder, [text])[0]
    program = "\n".join(p for _, p in document)
    assert any(subject.startswith("[1") and len(subject.split("]")[0]) == 5 for subject, _ in document)
    removed = removed_lines(program)
    second_copy = len("\n".join(WEB.values()).split("\n"))
    assert second_copy > 700 and second_copy in removed  # "PPAA Home" again, far past [999]
    assert not parse_program(program, "chunk").diagnostics


def test_strings_are_escaped_for_the_parser():
    raw = 'He said "no" to C:\\temp. Click here to see "the list" \\ now.\r'
    program = chunk_program(f"[057]{raw}", ends_document=False)
    parsed = parse_program(program, "chunk")
    (op,) = parsed.operations
    assert not parsed.diagnostics and isinstance(op, Normalize)
    assert op.source_str == ' Click here to see "the list" \\ now.\r' and op.source_str in raw


def test_end_to_end_with_the_interpreter(builder):
    ids = [CLAIHR, GROOVE, ADVOCATES]
    texts = [WEB[i] for i in ids]
    doc_programs = RulesEngine("doc").generate([Prompt(subject=t) for t in texts], SETTINGS)
    chunk = ["\n".join(p for _, p in document) for document in chunk_programs(builder, texts)]
    claihr, groove, advocates = (execute_programs(t, d.text, c) for t, d, c in zip(texts, doc_programs, chunk,
                                                                                     strict=True))
    assert claihr.action is Action.MODIFIED and groove.action is Action.MODIFIED
    assert "Founding Board of Directors" not in claihr.text and "© 2014" not in claihr.text
    assert claihr.text.startswith("2014 Year in Review: Canada’s Top Court Rejects Torture as Tort\n")
    assert line(WEB[CLAIHR], 6) in claihr.text
    assert "Groove Notes Homepage" not in groove.text and "Tag: duke ellington" not in groove.text
    assert line(WEB[GROOVE], 8) in groove.text
    assert advocates.action is Action.DROPPED and advocates.reason is Reason.DOC_DROP  # a tag page, mostly links
    assert not any(d.counted for d in claihr.diagnostics + groove.diagnostics)


def test_engine_by_name_and_its_errors():
    engine = EngineSpec("rules", "chunk", {}, tokenizer=BUNDLED_TOKENIZER).create()
    assert isinstance(engine, RulesEngine)
    with pytest.raises(ValueError, match="rule sets"):
        RulesEngine("web")
    completion = RulesEngine("doc").generate([Prompt(ids=(1, 2, 3))], SETTINGS)[0]
    assert completion.text == "" and completion.error
    assert RulesEngine("doc").generate([Prompt(subject=CLEAN)], SETTINGS)[0].prompt_tokens == 0
