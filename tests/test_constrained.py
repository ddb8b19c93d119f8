"""`prox refine --constrained` with the transformers engine (llguidance) and a random-weight Llama: the
programs it writes without the grammar are malformed; with it, every program of both stages parses
with no diagnostics, every doc program is drop_doc() or keep_doc(), and every line number of a chunk
program lies in the document (its chunks' own lines). A model's programs that run cleanly come out the
same with --constrained (on vLLM: test_vllm_plugin.py). vLLM and its server with a random Llama:
test_vllm_engine.py.
"""

import pytest
from conftest import random_llama, read_output, run_prox
from vllm_server import chain_llama

from prox.execution import execute_programs
from prox.language import parse_program

pytest.importorskip("llguidance", reason="llguidance comes with vLLM's CPU build (make test installs it)")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def long_context_model(tmp_path_factory, llama_tokenizer):
    """Its context holds the doc prompts (2000 tokens) and their outputs."""
    return random_llama(tmp_path_factory.mktemp("long-context-llama"), llama_tokenizer, context=4096)


def programs(model, out, *extra):
    run_prox("refine", "--input", "samples/web-documents.jsonl", "--output", str(out), "--doc-model", str(model),
             "--chunk-model", str(model), "--engine", "transformers", "--dtype", "float32", "--limit", "4",
             "--batch-size", "4", "--keep-raw", *extra)
    kept, dropped = read_output(out)
    return [(row["metadata"]["doc_program"], row["metadata"]["chunk_program"],
             row["metadata"].get("raw_content") or row["text"]) for row in kept + dropped]


def test_constrained_programs_of_both_stages_parse_cleanly_and_name_their_lines(long_context_model, tmp_path):
    free = programs(long_context_model, tmp_path / "free", "--stage", "chunk")
    assert all(parse_program(chunk, "chunk").diagnostics for _, chunk, _ in free)
    constrained = programs(long_context_model, tmp_path / "constrained", "--constrained")
    assert len(constrained) == 4 and any(chunk is not None for _, chunk, _ in constrained)
    for doc, chunk, text in constrained:
        assert doc.strip() in ("drop_doc()", "keep_doc()") and not parse_program(doc, "doc").diagnostics
        chunk_program = parse_program(chunk or "", "chunk")
        assert chunk is None or (chunk_program.operations and not chunk_program.diagnostics), chunk
        for op in chunk_program.operations:
            assert getattr(op, "line_end", 0) <= text.count("\n")
    settings = (tmp_path / "constrained" / "logs" / "settings.json").read_text()
    assert '"constrained": true' in settings


def test_a_program_that_runs_cleanly_comes_out_the_same_under_the_grammar(llama_tokenizer, tmp_path):
    """Models that write one clean program each (chain_llama): with --constrained they write the same.
    A document of several chunks gets the normalize once per chunk, and the second changes nothing
    (a no_effect diagnostic): the documents of one chunk run cleanly."""
    doc_model = chain_llama(tmp_path / "doc-model", llama_tokenizer, "keep_doc()")
    chunk_model = chain_llama(tmp_path / "chunk-model", llama_tokenizer, 'normalize(source_str="e")')
    runs = {}
    for name, extra in (("free", ()), ("constrained", ("--constrained",))):
        run_prox("refine", "--input", "samples/web-documents.jsonl", "--output", str(tmp_path / name),
                 "--doc-model", str(doc_model), "--chunk-model", str(chunk_model), "--engine", "transformers",
                 "--dtype", "float32", "--limit", "8", "--batch-size", "8", "--keep-raw", "--truncate-document",
                 *extra)
        kept, dropped = read_output(tmp_path / name)
        runs[name] = {row["id"]: row["metadata"] for row in kept + dropped}
    clean = [key for key, m in runs["free"].items()
             if not execute_programs(m["raw_content"], m["doc_program"], m["chunk_program"]).diagnostics]
    assert len(clean) >= 3
    for key in clean:
        free, constrained = runs["free"][key], runs["constrained"][key]
        assert (free["doc_program"], free["chunk_program"]) == (constrained["doc_program"],
                                                                constrained["chunk_program"])
        assert (free["doc_program"], free["chunk_program"]) == ("keep_doc()", 'normalize(source_str="e")')
    assert all(m["doc_program"] == "keep_doc()" for run in runs.values() for m in run.values())
