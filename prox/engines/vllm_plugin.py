"""What prox changes in vLLM for --constrained: a vLLM plugin that makes grammars cheap.

- A grammar is validated once and built a few times (in each vLLM process that needs it), not twice
  per request. vLLM builds a request's grammar twice and keeps neither: llguidance builds it to validate
  it in the process that adds the request, and builds a matcher for it in the engine core, 0.5 to
  1.4 ms each here whatever its size, though every doc prompt carries the same grammar and chunk
  prompts share theirs by line range. This keeps each grammar's validation, and matchers that never
  run, of which each request gets a copy (LLMatcher.deep_copy: a microsecond). Chunk grammars that
  differ only by their line numbers are valid or not alike: one is validated for all.
- On a CPU, mask rows that allow few tokens are applied by prox.engines.token_mask, the others by
  xgrammar's CPU kernel, which writes -inf token by token.

A copy has its own parser state but shares its build's lexer (llguidance keeps it behind one lock):
the copies of one build compute their masks in turn, and what the lexer learns or an error it hits
is theirs alike. So a grammar has up to as many builds as vLLM has threads filling masks, taken in
turns, and a build is replaced after COPIES_PER_BUILD copies or once it shows an error.

On vLLM's CPU build with a tiny model, the two were most of what --constrained cost (benchmarks/
constrained.py). vLLM runs this in each process it starts, as a general plugin (entry point
`vllm.general_plugins`; VLLM_PLUGINS, where set, must name `prox`), but it acts only where prox's
engines ask for it (PROX_VLLM_PLUGIN=1 in the environment, which vLLM's processes inherit; 0 set by
hand keeps it off), and only on a vLLM that has what it wraps: otherwise vLLM is left as it is.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import multiprocessing
import os
import threading

SWITCH = "PROX_VLLM_PLUGIN"
GRAMMARS_KEPT = 1024  # per process (about 50 KB a build); chunk grammars differ by line range only
BUILDS_PER_GRAMMAR = max(1, min(multiprocessing.cpu_count() // 2, 8))  # vLLM's count of mask-filling threads
COPIES_PER_BUILD = 256


def register() -> None:
    """vLLM's plugin hook, called in each of its processes."""
    if os.environ.get(SWITCH) == "1":
        install()


def wanted() -> str:
    """The switch for the vLLM processes prox starts: on, unless set to 0 by hand (to compare)."""
    return "0" if os.environ.get(SWITCH) == "0" else "1"


def enable() -> None:
    """For prox's vLLM engine: in this process and the vLLM processes it starts."""
    os.environ[SWITCH] = wanted()
    if os.environ[SWITCH] == "1":
        install()


@functools.cache
def install() -> None:
    """Wraps what this vLLM has of what the plugin changes, once per process."""
    try:
        from vllm.logger import init_logger
        from vllm.v1.structured_output import backend_guidance
        from vllm.v1.structured_output.request import get_structured_output_key
    except ImportError:
        return
    wrapped = []
    backend = getattr(backend_guidance, "GuidanceBackend", None)
    if hasattr(backend_guidance, "validate_guidance_grammar") and hasattr(backend, "compile_grammar"):
        backend_guidance.validate_guidance_grammar = _validating_once(backend_guidance.validate_guidance_grammar,
                                                                      get_structured_output_key)
        backend.compile_grammar = _copying_builds(backend.compile_grammar)
        wrapped.append("grammars validated once, built per thread")
    try:
        import xgrammar
    except ImportError:
        xgrammar = None
    if hasattr(xgrammar, "apply_token_bitmask_inplace"):  # what vLLM calls, as xgr.apply_token_bitmask_inplace
        xgrammar.apply_token_bitmask_inplace = _masking_by_rows(xgrammar.apply_token_bitmask_inplace)
        wrapped.append("CPU masks by rows")
    init_logger("vllm.prox").info("prox's vLLM plugin: %s", ", ".join(wrapped) or "nothing this vLLM has")


def _masking_by_rows(apply_token_bitmask_inplace):
    """xgrammar's `apply_token_bitmask_inplace`, with prox.engines.token_mask for CPU logits."""
    from prox.engines.token_mask import apply_token_bitmask

    def apply(logits, bitmask, *, vocab_size=None, indices=None, backend="auto"):
        if logits.is_cpu and bitmask.is_cpu and vocab_size is None and backend == "auto":
            apply_token_bitmask(logits, bitmask, indices, apply_token_bitmask_inplace)
        else:
            apply_token_bitmask_inplace(logits, bitmask, vocab_size=vocab_size, indices=indices, backend=backend)

    return apply


def _validating_once(validate, key_of):
    """`validate(sampling_params, tokenizer)` that passes a grammar it passed before at once, and a
    chunk grammar that differs from one it passed only by its line numbers. A grammar it refused is
    checked again (and refused again, with vLLM's own error)."""
    from prox.language.grammar import without_line_numbers

    passed: collections.OrderedDict[tuple, object] = collections.OrderedDict()  # key: the tokenizer, kept alive

    def validate_once(sampling_params, tokenizer=None):
        constraint = sampling_params.structured_outputs
        if constraint is None:
            return validate(sampling_params, tokenizer)
        kind, spec = key_of(constraint)
        key = (id(tokenizer), kind, without_line_numbers(spec) if isinstance(spec, str) else spec)
        if key in passed:
            passed.move_to_end(key)
            return None
        validate(sampling_params, tokenizer)
        passed[key] = tokenizer
        if len(passed) > GRAMMARS_KEPT:
            passed.popitem(last=False)
        return None

    return validate_once


class _Builds:
    """One grammar's builds (GuidanceGrammar objects whose matchers never run), taken in turns, each
    with the copies it may still give."""

    def __init__(self):
        self.turns: collections.deque[list] = collections.deque()  # [build, copies left]

    def next_copy(self):
        """A copy of the next build in turn; None where a new build is wanted: fewer than
        BUILDS_PER_GRAMMAR, or the next one used up or in error (it is dropped)."""
        if len(self.turns) < BUILDS_PER_GRAMMAR:
            return None
        build, left = self.turns[0]
        if left == 0 or build.ll_matcher.is_error():
            self.turns.popleft()
            return None
        self.turns[0][1] -= 1
        self.turns.rotate(-1)
        return _copy(build)

    def add(self, build) -> None:
        if len(self.turns) < BUILDS_PER_GRAMMAR:
            self.turns.append([build, COPIES_PER_BUILD - 1])


def _copy(build):
    """A request's grammar: a copy of the build's matcher, in its first state."""
    return dataclasses.replace(build, ll_matcher=build.ll_matcher.deep_copy())


def _copying_builds(compile_grammar):
    """`GuidanceBackend.compile_grammar` that hands each request a copy of one of its grammar's builds,
    per backend; builds run outside the lock (compile_grammar runs on vLLM's thread pool)."""
    lock = threading.Lock()

    def compile_from_builds(backend, request_type, grammar_spec, stop_token_ids=None):
        key = (request_type, grammar_spec, None if stop_token_ids is None else frozenset(stop_token_ids))
        with lock:
            by_grammar = backend.__dict__.setdefault("_prox_builds", collections.OrderedDict())
            builds = by_grammar.setdefault(key, _Builds())
            by_grammar.move_to_end(key)
            if len(by_grammar) > GRAMMARS_KEPT:
                by_grammar.popitem(last=False)
            grammar = builds.next_copy()
        if grammar is None:
            build = compile_grammar(backend, request_type, grammar_spec, stop_token_ids=stop_token_ids)
            with lock:
                builds.add(build)
                grammar = _copy(build)
        grammar.check_error()
        return grammar

    return compile_from_builds
