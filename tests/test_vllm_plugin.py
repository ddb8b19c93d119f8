"""prox's vLLM plugin (prox/engines/vllm_plugin.py) with vLLM's own pieces:
- vLLM loads it as a general plugin, and it changes vLLM only where prox switched it on;
- a grammar is built a few times (once per mask-filling thread, and again every COPIES_PER_BUILD
  requests), and every request gets a matcher of its own in the first state, which masks as a freshly
  built one does;
- a grammar is validated once; one that vLLM refuses is refused every time, with vLLM's error;
- masks it declines to apply go to xgrammar's kernel.
- on prox's vLLM engine, a model's clean chunk programs come out the same with their grammars, the
  real chunk prompts of the bundled documents.
Whole runs through the plugin (each vLLM process says what it changed): test_vllm_engine.py; its
speed: benchmarks/constrained.py."""

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from conftest import needs_vllm

from prox.engines import vllm_plugin
from prox.language.grammar import program_grammar

pytestmark = needs_vllm

LOADED = """
import os, xgrammar
from vllm.plugins import DEFAULT_PLUGINS_GROUP, load_general_plugins, load_plugins_by_group
from vllm.v1.structured_output import backend_guidance as guidance
def wrapped():
    return [f.__qualname__.split(".")[0] for f in (guidance.validate_guidance_grammar,
            guidance.GuidanceBackend.compile_grammar, xgrammar.apply_token_bitmask_inplace)]
load_general_plugins()  # as vLLM does in each of its processes, here with the switch off
print(*wrapped())
os.environ["PROX_VLLM_PLUGIN"] = "1"
for plugin in load_plugins_by_group(DEFAULT_PLUGINS_GROUP).values():  # again, the switch on
    plugin()
print(*wrapped())
"""


def test_vllm_loads_it_and_it_acts_only_where_prox_switched_it_on():
    result = subprocess.run([sys.executable, "-c", LOADED], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin"}, timeout=300, check=True)
    off, on = result.stdout.splitlines()
    assert off.split() == ["validate_guidance_grammar", "GuidanceBackend", "apply_token_bitmask_inplace"]
    assert on.split() == ["_validating_once", "_copying_builds", "_masking_by_rows"]


@pytest.fixture(scope="module")
def backend(llama_tokenizer):
    from vllm.config import StructuredOutputsConfig
    from vllm.v1.structured_output.backend_guidance import GuidanceBackend

    config = SimpleNamespace(structured_outputs_config=StructuredOutputsConfig())  # all the backend reads
    return GuidanceBackend(config, tokenizer=llama_tokenizer, vocab_size=32000)


def test_each_request_gets_a_matcher_of_its_own_from_a_few_builds(backend, llama_tokenizer, monkeypatch):
    """As many builds as vLLM has threads filling masks, then copies of them in turns; a build gives
    COPIES_PER_BUILD copies, then another replaces it. Each copy starts in the first state, whatever
    the others did, and masks as a fresh build does."""
    from vllm.v1.structured_output.backend_guidance import GuidanceBackend
    from vllm.v1.structured_output.backend_types import StructuredOutputOptions

    builds = []

    def build(backend, *args, **kwargs):
        builds.append(args)
        return GuidanceBackend.compile_grammar(backend, *args, **kwargs)

    monkeypatch.setattr(vllm_plugin, "COPIES_PER_BUILD", 3)
    compile_once = vllm_plugin._copying_builds(build)
    threads = vllm_plugin.BUILDS_PER_GRAMMAR
    grammar = program_grammar("chunk", (3, 12))
    first, second, *_ = (compile_once(backend, StructuredOutputOptions.GRAMMAR, grammar) for _ in range(3 * threads))
    assert len(builds) == threads
    program = llama_tokenizer.encode("remove_lines(line_start=4, line_end=12)", add_special_tokens=False)
    assert first.accept_tokens("first", program)
    assert first.ll_matcher.is_accepting()
    assert second.validate_tokens(program) == program  # untouched by the first's tokens
    third = compile_once(backend, StructuredOutputOptions.GRAMMAR, grammar)
    assert len(builds) == threads + 1  # the first build gave its 3 copies
    fresh = GuidanceBackend.compile_grammar(backend, StructuredOutputOptions.GRAMMAR, grammar)
    masks = torch.zeros((2, 1000), dtype=torch.int32)
    for token in program:
        third.fill_bitmask(masks, 0)
        fresh.fill_bitmask(masks, 1)
        assert torch.equal(masks[0], masks[1])
        assert third.accept_tokens("third", [token]) and fresh.accept_tokens("fresh", [token])
    assert third.validate_tokens(llama_tokenizer.encode("line_end=13)", add_special_tokens=False)) == []


def test_a_grammar_is_validated_once_chunk_grammars_once_for_all_line_numbers_and_a_refused_one_every_time():
    from vllm import SamplingParams
    from vllm.exceptions import VLLMValidationError
    from vllm.sampling_params import StructuredOutputsParams
    from vllm.v1.structured_output import backend_guidance
    from vllm.v1.structured_output.request import get_structured_output_key

    calls = []

    def validate(sampling_params, tokenizer=None):
        calls.append(sampling_params.structured_outputs.grammar)
        return backend_guidance.validate_guidance_grammar(sampling_params, tokenizer)

    def params(grammar: str) -> SamplingParams:
        return SamplingParams(structured_outputs=StructuredOutputsParams(grammar=grammar))

    validate_once = vllm_plugin._validating_once(validate, get_structured_output_key)
    good, bad = params(program_grammar("doc")), params("%llguidance {}\nstart: undefined\n")
    for _ in range(3):
        validate_once(good)
    for _ in range(2):
        with pytest.raises(VLLMValidationError, match='unknown name: "undefined"'):
            validate_once(bad)
    chunks = [program_grammar("chunk", lines) for lines in [(1, 9), (12, 30), (7, 7)]]
    for chunk in chunks:
        validate_once(params(chunk))
    other = program_grammar("chunk", None)  # any line number: another grammar
    validate_once(params(other))
    assert calls == [good.structured_outputs.grammar] + [bad.structured_outputs.grammar] * 2 + [chunks[0], other]
    broken = chunks[1].replace("call_keep_chunk:", "call_keep:")  # refused, whatever its line numbers
    with pytest.raises(VLLMValidationError, match="call_keep_chunk"):
        validate_once(params(broken))


def test_rows_that_allow_most_tokens_go_to_xgrammars_kernel():
    import xgrammar

    apply = vllm_plugin._masking_by_rows(xgrammar.apply_token_bitmask_inplace)
    halves = torch.full((4, 1000), 0x55555555, dtype=torch.int32)
    logits = torch.randn(4, 32000)
    theirs = logits.clone()
    apply(logits, halves)
    xgrammar.apply_token_bitmask_inplace(theirs, halves)
    assert torch.equal(logits, theirs) and torch.isinf(logits).sum() == 4 * 16000


def test_on_prox_s_vllm_engine_clean_programs_come_out_the_same_under_their_grammars(llama_tokenizer, tmp_path,
                                                                                     monkeypatch):
    """A model that writes one clean chunk program after any prompt (chain_llama): the same program
    under each chunk's grammar (its own line numbers), free and constrained in one engine."""
    from vllm_server import chain_llama

    from prox.engines import GenerationSettings
    from prox.engines.vllm_engine import VLLMEngine
    from prox.prompts import PromptBuilder, load_prompts

    monkeypatch.delenv(vllm_plugin.SWITCH, raising=False)  # the engine sets it; set back after the test
    program = 'normalize(source_str="e")'
    engine = VLLMEngine(str(chain_llama(tmp_path / "model", llama_tokenizer, program)), dtype="float32",
                        gpu_memory_utilization=0.1, enforce_eager=True, max_model_len=4096)
    assert os.environ[vllm_plugin.SWITCH] == "1"
    builder = PromptBuilder(load_prompts("web"), llama_tokenizer, truncate_document=True)
    texts = [json.loads(line)["text"] for line in open("samples/web-documents.jsonl")][:12]
    chunks = [p for document in builder.chunk_prompts_batch(texts, builder.document_lines(texts)) for p in document]
    prompts = [p.for_engine() for p in chunks]
    constrained = [p.for_engine(program_grammar("chunk", p.shown_lines)) for p in chunks]
    settings = GenerationSettings(256)
    free = [c.text for c in engine.generate(prompts, settings)]
    assert len(chunks) >= 12 and free == [program] * len(chunks)
    assert [c.text for c in engine.generate(constrained, settings)] == free
    engine.close()
