"""`prox refine --constrained` with the transformers engine (xgrammar) and a random-weight Llama: the
doc programs it writes without the grammar are malformed; with it, every one is drop_doc() or
keep_doc() and parses with no diagnostics, and every chunk program's line numbers lie in the
document (its chunks' own lines).
"""

import pytest
from conftest import random_llama, read_output, run_prox

from prox.language import parse_program

pytest.importorskip("xgrammar", reason="xgrammar comes with vLLM's CPU build (make test installs it)")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def long_context_model(tmp_path_factory, llama_tokenizer):
    """Its context holds the doc prompts (2000 tokens) and their outputs."""
    return random_llama(tmp_path_factory.mktemp("long-context-llama"), llama_tokenizer, context=4096)


def programs(model, out, *extra):
    run_prox("refine", "--input", "samples/web-documents.jsonl", "--output", str(out), "--doc-model", str(model),
             "--chunk-model", str(model), "--engine", "transformers", "--dtype", "float32", "--limit", "6",
             "--batch-size", "6", "--keep-raw", *extra)
    kept, dropped = read_output(out)
    return [(row["metadata"]["doc_program"], row["metadata"]["chunk_program"],
             row["metadata"].get("raw_content") or row["text"]) for row in kept + dropped]


def test_constrained_doc_programs_always_parse_and_chunk_programs_name_their_lines(long_context_model, tmp_path):
    free = programs(long_context_model, tmp_path / "free", "--stage", "doc")
    assert all(parse_program(doc, "doc").diagnostics for doc, _, _ in free)
    constrained = programs(long_context_model, tmp_path / "constrained", "--constrained")
    assert len(constrained) == 6
    for doc, chunk, text in constrained:
        assert doc.strip() in ("drop_doc()", "keep_doc()") and not parse_program(doc, "doc").diagnostics
        for op in parse_program(chunk, "chunk").operations if chunk is not None else ():
            assert op.function in ("remove_lines", "normalize", "keep_chunk")
            assert getattr(op, "line_end", 0) <= text.count("\n")
    settings = (tmp_path / "constrained" / "logs" / "settings.json").read_text()
    assert '"constrained": true' in settings
