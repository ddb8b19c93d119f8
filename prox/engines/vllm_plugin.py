"""What prox changes in vLLM for --constrained: a vLLM plugin that makes grammars cheap.

- Each grammar is built once, not once per request. vLLM builds a request's grammar twice and keeps
  neither: llguidance builds it to validate it in the process that adds the request, and builds a
  matcher for it in the engine core, 0.5 to 1.4 ms each here whatever its size, though every doc
  prompt carries the same grammar and chunk prompts share theirs by line range. This keeps each
  grammar's validation, and a matcher that never runs, of which each request gets a copy
  (LLMatcher.deep_copy: a microsecond).
- On a CPU, masks are applied by prox.engines.token_mask instead of xgrammar's CPU kernel.

On vLLM's CPU build with a tiny model, the two were most of what --constrained cost (benchmarks/
constrained.py). vLLM runs this in each process it starts, as a general plugin (entry point
`vllm.general_plugins`), but it acts only where prox's engines ask for it (PROX_VLLM_PLUGIN=1 in
the environment, which vLLM's processes inherit), and only on a vLLM that has what it wraps:
otherwise vLLM is left as it is.
"""

from __future__ import annotations

import functools
import os
import threading

from prox.engines.token_mask import apply_token_bitmask

SWITCH = "PROX_VLLM_PLUGIN"
GRAMMARS_KEPT = 1024  # per process (about 50 KB a matcher); chunk grammars differ by line range only


def register() -> None:
    """vLLM's plugin hook, called in each of its processes."""
    if os.environ.get(SWITCH) == "1":
        install()


def enable() -> None:
    """For prox's vLLM engines: in this process and the vLLM processes it starts."""
    os.environ[SWITCH] = "1"
    install()


@functools.cache
def install() -> None:
    """Wraps what this vLLM has of what the plugin changes, once per process."""
    try:
        from vllm.v1.structured_output import backend_guidance
        from vllm.v1.structured_output.request import get_structured_output_key
    except ImportError:
        return
    backend = getattr(backend_guidance, "GuidanceBackend", None)
    if hasattr(backend_guidance, "validate_guidance_grammar") and hasattr(backend, "compile_grammar"):
        backend_guidance.validate_guidance_grammar = _validating_once(backend_guidance.validate_guidance_grammar,
                                                                      get_structured_output_key)
        backend.compile_grammar = _compiling_once(backend.compile_grammar)
    try:
        import xgrammar
    except ImportError:
        return
    if hasattr(xgrammar, "apply_token_bitmask_inplace"):  # what vLLM calls, as xgr.apply_token_bitmask_inplace
        xgrammar.apply_token_bitmask_inplace = _masking_by_rows(xgrammar.apply_token_bitmask_inplace)


def _masking_by_rows(apply_token_bitmask_inplace):
    """xgrammar's `apply_token_bitmask_inplace`, by prox.engines.token_mask for CPU logits."""

    def apply(logits, bitmask, *, vocab_size=None, indices=None, backend="auto"):
        if not (logits.is_cpu and bitmask.is_cpu and vocab_size is None and backend == "auto"
                and apply_token_bitmask(logits, bitmask, None if indices is None else list(indices))):
            apply_token_bitmask_inplace(logits, bitmask, vocab_size=vocab_size, indices=indices, backend=backend)

    return apply


def _validating_once(validate, key_of):
    """`validate(sampling_params, tokenizer)` that passes a grammar it passed before at once. A
    grammar it refused is checked again (and refused again, with vLLM's own error)."""
    passed: dict[tuple, object] = {}  # the tokenizer is kept so that its id is never reused

    def validate_once(sampling_params, tokenizer=None):
        constraint = sampling_params.structured_outputs
        if constraint is None:
            return validate(sampling_params, tokenizer)
        key = (id(tokenizer), *key_of(constraint))
        if key not in passed:
            validate(sampling_params, tokenizer)
            if len(passed) >= GRAMMARS_KEPT:
                passed.clear()
            passed[key] = tokenizer
        return None

    return validate_once


def _compiling_once(compile_grammar):
    """`GuidanceBackend.compile_grammar` that builds each grammar's matcher once per backend and hands
    each request a copy in the matcher's first state."""
    lock = threading.Lock()  # compile_grammar runs on vLLM's thread pool; one copy at a time

    def compile_once(backend, request_type, grammar_spec, stop_token_ids=None):
        with lock:
            pristine = backend.__dict__.get("_prox_pristine")
            if pristine is None:  # lru_cache: safe across threads, builds outside any lock
                pristine = backend._prox_pristine = functools.lru_cache(maxsize=GRAMMARS_KEPT)(
                    lambda kind, spec, stops: compile_grammar(backend, kind, spec, stop_token_ids=stops))
        kept = pristine(request_type, grammar_spec, None if stop_token_ids is None else frozenset(stop_token_ids))
        with lock:
            matcher = kept.ll_matcher.deep_copy()
        grammar = type(kept)(ll_matcher=matcher, ll_tokenizer=kept.ll_tokenizer, vocab_size=kept.vocab_size)
        grammar.check_error()
        return grammar

    return compile_once
