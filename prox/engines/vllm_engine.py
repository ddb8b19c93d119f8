"""Engine on vLLM's offline `LLM`: the GPU engine of production runs.

Every prompt reaches vLLM as token ids: doc-stage prompts come as ids, chunk-stage texts are
tokenized here with the tokenizer's default special tokens, as vLLM itself would (the reference
hands vLLM the strings). Knowing each length first lets prox keep out the prompts that do not fit
the context, because vLLM refuses a whole `generate` call for one such prompt; those get a
Completion error and the others run. Each prompt may generate up to the context's end, as the
reference's vLLM did, so output is capped per prompt.
"""

from __future__ import annotations

from prox.engines.base import Completion, EngineError, GenerationSettings, Prompt
from prox.engines.context import fit_to_context, prompt_ids
from prox.engines.models import ModelNotFoundError, load_tokenizer, not_found_message


class VLLMEngine:
    """One `vllm.LLM` for one model. `gpu_memory_utilization` is this engine's share of the GPU,
    so the doc and chunk models can sit on one GPU (the CLI splits its budget between them)."""

    def __init__(self, model: str, dtype: str | None = None, gpu_memory_utilization: float = 0.9,
                 tensor_parallel_size: int = 1, max_model_len: int | None = None, seed: int = 0,
                 enforce_eager: bool = False, fixed_output_tokens: int | None = None):
        """`fixed_output_tokens`: generate exactly this many tokens, past EOS (benchmarks pin the
        work this way so that engines compare on equal output)."""
        try:
            from vllm import LLM, SamplingParams
        except ImportError as error:
            raise EngineError("the vllm engine needs vLLM: pip install 'prox[vllm]' on a GPU machine") from error
        self.tokenizer = load_tokenizer(model)
        self.sampling_params = SamplingParams
        self.fixed_output_tokens = fixed_output_tokens
        try:
            self.llm = LLM(model=model, dtype=dtype or "auto", gpu_memory_utilization=gpu_memory_utilization,
                           tensor_parallel_size=tensor_parallel_size, max_model_len=max_model_len, seed=seed,
                           enforce_eager=enforce_eager)
        except (OSError, ValueError) as error:
            raise ModelNotFoundError(not_found_message(model, error)) from error
        engine = self.llm.llm_engine  # the config's place differs between vLLM versions
        self.context = (getattr(engine, "model_config", None) or engine.vllm_config.model_config).max_model_len

    def generate(self, prompts: list[Prompt], settings: GenerationSettings) -> list[Completion]:
        ids = prompt_ids(self.tokenizer, prompts)
        completions, servable = fit_to_context(ids, self.context)
        if servable:
            requests = [{"prompt_token_ids": ids[i]} for i in servable]
            wanted = self.fixed_output_tokens or settings.max_new_tokens
            params = [self._params(min(wanted, self.context - len(ids[i]))) for i in servable]
            outputs = self.llm.generate(requests, params, use_tqdm=False)
            for i, output in zip(servable, outputs, strict=True):
                generated = output.outputs[0]
                completions[i] = Completion(generated.text.strip(" "), len(ids[i]), len(generated.token_ids))
        return completions

    def _params(self, max_tokens: int):
        return self.sampling_params(temperature=0.0, max_tokens=max_tokens, skip_special_tokens=True,
                                    ignore_eos=self.fixed_output_tokens is not None)
