"""Engine on vLLM's offline `LLM`: the GPU engine of production runs.

Every prompt reaches vLLM as token ids: doc-stage prompts come as ids, chunk-stage texts are
tokenized here with the tokenizer's default special tokens, as vLLM itself would (the reference
hands vLLM the strings). Knowing each length first lets prox keep out the prompts that do not fit
the context, because vLLM refuses a whole `generate` call for one such prompt; those get a
Completion error and the others run. Each prompt may generate up to the context's end, as the
reference's vLLM did, so output is capped per prompt.

Calls do not wait for each other: one thread steps vLLM's engine, and every call's requests join
the running batch as they come, as they would at vLLM's server. So the doc and chunk stages share
one batch, and a stage's next batch starts while its previous one finishes instead of after it
(`LLM.generate` per call would leave the engine with ever fewer requests at the end of each call).
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Iterator

from prox.engines import vllm_plugin
from prox.engines.base import Completion, EngineError, GenerationSettings, Prompt
from prox.engines.context import fit_to_context, prompt_ids
from prox.engines.models import ModelNotFoundError, load_tokenizer, not_found_message

GRAMMAR_BACKEND = {"backend": "guidance"}  # llguidance, for prox's grammars (prox/language/grammar.py)


class _Call:
    """One `generate` call's requests, waited for by its caller."""

    def __init__(self, count: int):
        self.outputs: list = [None] * count
        self.left = count
        self.error: BaseException | None = None
        self.finished = threading.Event()

    def deliver(self, slot: int, output) -> None:
        self.outputs[slot] = output
        self.left -= 1
        if self.left == 0:
            self.finished.set()

    def fail(self, error: BaseException) -> None:
        self.error = self.error or error
        self.finished.set()

    def wait(self) -> list:
        self.finished.wait()
        if self.error is not None:
            raise self.error
        return self.outputs


class VLLMEngine:
    """One `vllm.LLM` for one model. `gpu_memory_utilization` is this engine's share of the GPU,
    so the doc and chunk models can sit on one GPU (the CLI splits its budget between them)."""

    concurrent_calls = True  # calls from several threads: their requests share the engine's batch

    def __init__(self, model: str, dtype: str | None = None, gpu_memory_utilization: float = 0.9,
                 tensor_parallel_size: int = 1, max_model_len: int | None = None, seed: int = 0,
                 enforce_eager: bool = False, fixed_output_tokens: int | None = None):
        """`fixed_output_tokens`: generate exactly this many tokens, past EOS (benchmarks pin the
        work this way so that engines compare on equal output)."""
        try:
            from vllm import LLM, SamplingParams
            from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams
        except ImportError as error:
            raise EngineError("the vllm engine needs vLLM: pip install 'prox[vllm]' on a GPU machine") from error
        self.tokenizer = load_tokenizer(model)
        vllm_plugin.enable()  # here and in the engine core vLLM starts
        self.sampling_params, self.structured_outputs = SamplingParams, StructuredOutputsParams
        self.final_only = RequestOutputKind.FINAL_ONLY
        self.fixed_output_tokens = fixed_output_tokens
        try:
            self.llm = LLM(model=model, dtype=dtype or "auto", gpu_memory_utilization=gpu_memory_utilization,
                           tensor_parallel_size=tensor_parallel_size, max_model_len=max_model_len, seed=seed,
                           enforce_eager=enforce_eager, structured_outputs_config=GRAMMAR_BACKEND)
        except (OSError, ValueError) as error:
            raise ModelNotFoundError(not_found_message(model, error)) from error
        engine = self.llm.llm_engine  # the config's place differs between vLLM versions
        self.context = (getattr(engine, "model_config", None) or engine.vllm_config.model_config).max_model_len
        self._requests: queue.SimpleQueue = queue.SimpleQueue()  # (call, slot, prompt, params) to add
        self._broken: BaseException | None = None
        threading.Thread(target=self._step_engine, name="prox-vllm-steps", daemon=True).start()

    def generate(self, prompts: list[Prompt], settings: GenerationSettings) -> list[Completion]:
        ids = prompt_ids(self.tokenizer, prompts)
        completions, servable = fit_to_context(ids, self.context)
        if servable:
            if self._broken is not None:
                raise EngineError(f"the vLLM engine stopped: {self._broken}") from self._broken
            wanted = self.fixed_output_tokens or settings.max_new_tokens
            call = _Call(len(servable))
            for slot, i in enumerate(servable):
                params = self._params(min(wanted, self.context - len(ids[i])), prompts[i].grammar,
                                      settings.scored_tokens)
                self._requests.put((call, slot, {"prompt_token_ids": ids[i]}, params))
            for i, output in zip(servable, call.wait(), strict=True):
                generated = output.outputs[0]
                scores = None
                if settings.scored_tokens:
                    first = generated.logprobs[0]  # logprob_token_ids: exactly these, and the sampled token
                    scores = tuple(float(first[token].logprob) for token in settings.scored_tokens)
                completions[i] = Completion(generated.text.strip(" "), len(ids[i]), len(generated.token_ids),
                                            scores=scores)
        return completions

    def close(self) -> None:
        """Stops vLLM's processes now, not when Python exits (where vLLM's log lines of it may find
        their stream closed); calls made later fail."""
        self.llm.llm_engine.engine_core.shutdown()

    def _step_engine(self) -> None:
        """Adds the requests that came, steps the engine, hands finished outputs to their calls; waits
        for requests when there is nothing to step. An engine that fails fails every call, then
        and later."""
        engine, numbers = self.llm.llm_engine, itertools.count()
        running: dict[str, tuple[_Call, int]] = {}
        while True:
            self._add_requests(engine, running, numbers)
            try:
                outputs = engine.step()
            except BaseException as error:
                self._broken = error
                for call, _ in running.values():
                    call.fail(error)
                while True:  # and every call that comes later
                    self._requests.get()[0].fail(error)
            for output in outputs:
                if output.finished:
                    call, slot = running.pop(output.request_id)
                    call.deliver(slot, output)

    def _add_requests(self, engine, running: dict[str, tuple[_Call, int]], numbers: Iterator[int]) -> None:
        """Adds every request waiting in the queue to the engine; waits for one when none runs. A
        request the engine refuses fails its call, not the others."""
        while True:
            try:
                call, slot, prompt, params = self._requests.get(block=not running)
            except queue.Empty:
                return
            request_id = f"prox-{next(numbers)}"
            try:
                engine.add_request(request_id, prompt, params)
            except Exception as error:
                call.fail(error)
                continue
            running[request_id] = (call, slot)

    def _params(self, max_tokens: int, grammar: str | None, scored_tokens: tuple[int, ...]):
        constraint = self.structured_outputs(grammar=grammar) if grammar else None
        return self.sampling_params(temperature=0.0, max_tokens=max_tokens, skip_special_tokens=True,
                                    ignore_eos=self.fixed_output_tokens is not None, structured_outputs=constraint,
                                    logprob_token_ids=list(scored_tokens) or None,
                                    output_kind=self.final_only)  # nothing before the end
