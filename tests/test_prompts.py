"""ProX prompts equal the reference's, id for id, on real documents and the edge cases of the spec."""

import random

import pytest
from conftest import sample_rows
from reference_style import reference_chunk_prompts, reference_render

from prox.prompts import PromptBuilder, load_prompts

EDGE_CASES = {
    "past 999 lines": "\n".join(f"line {i} of a long list" for i in range(1205)),
    "one line over 1500 tokens": "intro\n" + "lorem ipsum dolor " * 700 + "\nafter",
    "empty lines": "\n\nfirst\n\n\nsecond\n\n",
    "longer than 2000 tokens": "A sentence of plain web text.\n" * 400,
    "trailing spaces": "text with trailing spaces   \n  ",
}


def documents() -> list[str]:
    return [row["text"] for row in sample_rows()] + list(EDGE_CASES.values())


@pytest.fixture(scope="module")
def builder(llama_tokenizer):
    return PromptBuilder(load_prompts("web"), llama_tokenizer)


def test_doc_prompts_equal_the_reference(builder, llama_tokenizer):
    texts = documents()
    expected = [llama_tokenizer(reference_render(t), add_special_tokens=False, truncation=True,
                                max_length=2000)["input_ids"] for t in texts]
    assert builder.doc_prompt_ids(texts) == expected


def test_doc_prompt_has_one_bos_and_long_documents_lose_the_closing_inst(builder, llama_tokenizer):
    short, long = builder.doc_prompt_ids(["hello", EDGE_CASES["longer than 2000 tokens"]])
    assert short.count(llama_tokenizer.bos_token_id) == 1 and short[0] == llama_tokenizer.bos_token_id
    assert len(long) == 2000 and not llama_tokenizer.decode(long).endswith("[/INST]")


def test_truncate_document_option_keeps_the_template_whole(llama_tokenizer):
    builder = PromptBuilder(load_prompts("web"), llama_tokenizer, truncate_document=True)
    short, long = builder.doc_prompt_ids(["hello", EDGE_CASES["longer than 2000 tokens"]])
    assert len(long) <= 2000 and llama_tokenizer.decode(long).endswith("[/INST]")
    assert short == PromptBuilder(load_prompts("web"), llama_tokenizer).doc_prompt_ids(["hello"])[0]


def test_chunk_prompts_equal_the_reference(builder, llama_tokenizer):
    for text in documents():
        assert [p.text for p in builder.chunk_prompts(text)] == reference_chunk_prompts(text, llama_tokenizer)


def test_chunk_edge_cases(builder):
    numbered = "".join(p.text for p in builder.chunk_prompts(EDGE_CASES["past 999 lines"]))
    assert "\n[099]line 99 " in numbered and "\n[999]line 999 " in numbered and "\n[1204]line 1204 " in numbered
    alone = builder.chunk_prompts(EDGE_CASES["one line over 1500 tokens"])
    assert len(alone) == 3 and "\n[001]lorem" in alone[1].text
    assert "[000]" not in alone[1].text and "[002]" not in alone[1].text
    assert builder.chunk_prompts("") == []


def test_chunk_prompt_ids_carry_the_reference_double_bos(builder, llama_tokenizer):
    (prompt,) = builder.chunk_prompts("one line")
    ids = builder.chunk_prompt_ids([prompt.text])[0]
    assert ids[:2] == [llama_tokenizer.bos_token_id] * 2


def test_batched_line_counts_equal_one_call_per_line(builder, llama_tokenizer):
    lines = builder.numbered_lines(sample_rows()[0]["text"])
    assert builder.line_token_counts(lines) == [len(llama_tokenizer.encode(line)) for line in lines]


def test_math_domain_shares_the_web_prompts():
    web, math = load_prompts("web"), load_prompts("math")
    assert (math.chat, math.doc, math.chunk, math.system_message) == (web.chat, web.doc, web.chunk, web.system_message)
    assert math.doc_model == "gair-prox/math-doc-refining-lm"
    with pytest.raises(ValueError, match="unknown domain"):
        load_prompts("code")


def fuzz_texts(seed: int, count: int, specials: bool = False) -> list[str]:
    """Short texts from the characters where tokens may join pieces: brackets, punctuation, spaces
    of all kinds, newlines, "▁" itself, emoji; and with `specials`, special tokens' text."""
    rng = random.Random(seed)
    alphabet = [*"ab ]),.[(\n\t:;\"'\u00a0\u3000é😀-_0~$`{}+/", "  ", "\n\n", "] ", " ]", "]]", "](", "▁", "▁▁"]
    alphabet += ["</s>", "<s>", "<unk>", "<", ">"] if specials else []
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(count)]


def test_prompts_put_together_from_lines_equal_the_whole_texts_tokenized(builder, llama_tokenizer):
    """Each line is tokenized once and both stages' ids are put together from the lines' ids: equal,
    id for id, to tokenizing each prompt's text, on real documents, the edge cases, and fuzz."""
    texts = [t for t in documents() + fuzz_texts(7, 1500) + fuzz_texts(8, 200, specials=True) if t.strip()]
    lines = builder.document_lines(texts)
    assert builder.pieces is not None and sum(doc is not None for doc in lines) > len(texts) // 2
    whole = [llama_tokenizer(builder.render(t), add_special_tokens=False)["input_ids"][:2000] for t in texts]
    assert builder.doc_prompt_ids(texts, lines) == whole
    assembled = 0
    texts, lines = texts + ["", "\n", " "], lines + builder.document_lines(["", "\n", " "])
    for text, prompts in zip(texts, builder.chunk_prompts_batch(texts, lines), strict=True):  # one batch
        assert [p.text for p in prompts] == [p.text for p in builder.chunk_prompts(text)]
        for prompt in prompts:
            if prompt.ids is not None:
                assert list(prompt.ids) == llama_tokenizer(prompt.text)["input_ids"]
                assembled += 1
    assert assembled > len(texts) // 2
    assert builder.document_lines(["a </s> in the text"]) == [None]  # the whole-text path
