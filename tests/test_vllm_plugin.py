"""prox's vLLM plugin (prox/engines/vllm_plugin.py) with vLLM's own pieces:
- vLLM loads it as a general plugin, and it changes vLLM only where prox switched it on;
- each grammar's matcher is built once, and every request gets a matcher of its own in the first
  state, which masks as a freshly built one does;
- a grammar is validated once; one that vLLM refuses is refused every time, with vLLM's error;
- masks it declines to apply go to xgrammar's kernel.
Whole runs through the plugin: test_vllm_engine.py and test_constrained.py; its speed:
benchmarks/constrained.py."""

import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from conftest import needs_vllm

from prox.engines import vllm_plugin
from prox.language.grammar import program_grammar

pytestmark = needs_vllm

WRAPPED = """
from vllm.plugins import load_general_plugins
load_general_plugins()
import xgrammar
from vllm.v1.structured_output import backend_guidance as guidance
print(guidance.validate_guidance_grammar.__qualname__, guidance.GuidanceBackend.compile_grammar.__qualname__,
      xgrammar.apply_token_bitmask_inplace.__qualname__)
"""


@pytest.mark.parametrize("switch", ["1", None])
def test_vllm_loads_it_and_it_acts_only_where_prox_switched_it_on(switch):
    environment = {"PATH": "/usr/bin:/bin"} | ({vllm_plugin.SWITCH: switch} if switch else {})
    result = subprocess.run([sys.executable, "-c", WRAPPED], capture_output=True, text=True, env=environment,
                            timeout=300, check=True)
    names = result.stdout.split()
    if switch:
        assert [name.split(".")[0] for name in names] == ["_validating_once", "_compiling_once", "_masking_by_rows"]
    else:
        assert names == ["validate_guidance_grammar", "GuidanceBackend.compile_grammar",
                         "apply_token_bitmask_inplace"]


@pytest.fixture(scope="module")
def backend(llama_tokenizer):
    from vllm.config import StructuredOutputsConfig
    from vllm.v1.structured_output.backend_guidance import GuidanceBackend

    config = SimpleNamespace(structured_outputs_config=StructuredOutputsConfig())  # all the backend reads
    return GuidanceBackend(config, tokenizer=llama_tokenizer, vocab_size=32000)


def test_each_request_gets_a_matcher_of_its_own_from_one_build(backend, llama_tokenizer):
    from vllm.v1.structured_output.backend_guidance import GuidanceBackend
    from vllm.v1.structured_output.backend_types import StructuredOutputOptions

    compile_once = vllm_plugin._compiling_once(GuidanceBackend.compile_grammar)
    grammar = program_grammar("chunk", (3, 12))
    first, second = (compile_once(backend, StructuredOutputOptions.GRAMMAR, grammar) for _ in range(2))
    assert backend._prox_pristine.cache_info()[:2] == (1, 1)  # one hit, one build
    program = llama_tokenizer.encode("remove_lines(line_start=4, line_end=12)", add_special_tokens=False)
    assert first.accept_tokens("first", program)
    assert first.ll_matcher.is_accepting()
    assert second.validate_tokens(program) == program  # untouched by the first's tokens
    third = compile_once(backend, StructuredOutputOptions.GRAMMAR, grammar)
    fresh = GuidanceBackend.compile_grammar(backend, StructuredOutputOptions.GRAMMAR, grammar)
    masks = torch.zeros((2, 1000), dtype=torch.int32)
    for token in program:
        third.fill_bitmask(masks, 0)
        fresh.fill_bitmask(masks, 1)
        assert torch.equal(masks[0], masks[1])
        assert third.accept_tokens("third", [token]) and fresh.accept_tokens("fresh", [token])
    assert third.validate_tokens(llama_tokenizer.encode("line_end=13)", add_special_tokens=False)) == []


def test_a_grammar_is_validated_once_and_a_refused_one_every_time():
    from vllm import SamplingParams
    from vllm.exceptions import VLLMValidationError
    from vllm.sampling_params import StructuredOutputsParams
    from vllm.v1.structured_output import backend_guidance
    from vllm.v1.structured_output.request import get_structured_output_key

    calls = []

    def validate(sampling_params, tokenizer=None):
        calls.append(sampling_params.structured_outputs.grammar)
        return backend_guidance.validate_guidance_grammar(sampling_params, tokenizer)

    validate_once = vllm_plugin._validating_once(validate, get_structured_output_key)
    good = SamplingParams(structured_outputs=StructuredOutputsParams(grammar=program_grammar("doc")))
    bad = SamplingParams(structured_outputs=StructuredOutputsParams(grammar="%llguidance {}\nstart: undefined\n"))
    for _ in range(3):
        validate_once(good)
    for _ in range(2):
        with pytest.raises(VLLMValidationError, match='unknown name: "undefined"'):
            validate_once(bad)
    assert calls == [good.structured_outputs.grammar] + [bad.structured_outputs.grammar] * 2


def test_masks_it_declines_go_to_xgrammars_kernel():
    import xgrammar

    apply = vllm_plugin._masking_by_rows(xgrammar.apply_token_bitmask_inplace)
    halves = torch.full((4, 1000), 0x55555555, dtype=torch.int32)
    logits = torch.randn(4, 32000)
    theirs = logits.clone()
    apply(logits, halves)
    xgrammar.apply_token_bitmask_inplace(theirs, halves)
    assert torch.equal(logits, theirs) and torch.isinf(logits).sum() == 4 * 16000
