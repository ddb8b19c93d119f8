"""Engine on transformers: batched greedy generation on CPU or GPU."""

from __future__ import annotations

from prox.engines.base import Completion, GenerationSettings, Prompt
from prox.engines.constraint import GrammarConstraint, llguidance_tokenizer
from prox.engines.context import fit_to_context, prompt_ids
from prox.engines.models import ModelNotFoundError, load_tokenizer, not_found_message


class TransformersEngine:
    """Left-padded batches of similar length, `batch_tokens` prompt-plus-output tokens per batch.
    A prompt's output does not depend on its batch-mates: one that the batch's cap (set by its
    longest prompt) may have cut short is generated again on its own."""

    def __init__(self, model: str, dtype: str | None = None, device: str | None = None,
                 batch_tokens: int = 32768):
        import torch
        from transformers import AutoModelForCausalLM

        self.torch = torch
        self.tokenizer = load_tokenizer(model)
        try:
            self.model = AutoModelForCausalLM.from_pretrained(model, dtype=getattr(torch, dtype) if dtype else "auto")
        except Exception as error:
            raise ModelNotFoundError(not_found_message(model, error)) from error
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).eval()
        self.batch_tokens = batch_tokens
        self.context = getattr(self.model.config, "max_position_embeddings", None) or 2048
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        self._grammar_tokenizer = None

    def generate(self, prompts: list[Prompt], settings: GenerationSettings) -> list[Completion]:
        ids = prompt_ids(self.tokenizer, prompts)
        grammars = [p.grammar for p in prompts]
        completions, servable = fit_to_context(ids, self.context)
        servable.sort(key=lambda i: len(ids[i]))
        for batch in self._batches(servable, ids, settings.max_new_tokens):
            batch_cap = self._cap([ids[i] for i in batch], settings)
            generated = self._generate_batch([ids[i] for i in batch], [grammars[i] for i in batch], settings)
            for i, completion in zip(batch, generated, strict=True):
                if completion.output_tokens >= batch_cap and self._cap([ids[i]], settings) > batch_cap:
                    completion = self._generate_batch([ids[i]], [grammars[i]], settings)[0]  # cut short by a batch-mate
                completions[i] = completion
        return completions

    def _cap(self, batch: list[list[int]], settings: GenerationSettings) -> int:
        """New tokens a batch may generate: never past the context (vLLM's rule), for its longest prompt."""
        return min(settings.max_new_tokens, self.context - max(len(ids) for ids in batch))

    def _batches(self, order: list[int], ids: list[list[int]], max_new_tokens: int):
        batch: list[int] = []
        for i in order:
            longest = max(len(ids[j]) for j in [*batch, i])
            if batch and (len(batch) + 1) * (longest + max_new_tokens) > self.batch_tokens:
                yield batch
                batch = []
            batch.append(i)
        if batch:
            yield batch

    def _constraint(self, grammars: list[str | None]) -> list:
        """The logits processor of the batch's grammars (one per prompt), or none."""
        if not any(grammars):
            return []
        if self._grammar_tokenizer is None:
            self._grammar_tokenizer = llguidance_tokenizer(self.tokenizer, self.model.config.vocab_size)
        return [GrammarConstraint(self._grammar_tokenizer, grammars)]

    def _generate_batch(self, batch: list[list[int]], grammars: list[str | None],
                        settings: GenerationSettings) -> list[Completion]:
        torch = self.torch
        width = max(len(ids) for ids in batch)
        input_ids = torch.tensor([[self.pad_id] * (width - len(ids)) + ids for ids in batch], device=self.device)
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch], device=self.device)
        max_new = self._cap(batch, settings)
        scored = list(settings.scored_tokens)
        with torch.inference_mode():
            output = self.model.generate(input_ids=input_ids, attention_mask=mask, do_sample=False,
                                         max_new_tokens=max_new, pad_token_id=self.pad_id,
                                         eos_token_id=self.tokenizer.eos_token_id,
                                         logits_processor=self._constraint(grammars),
                                         return_dict_in_generate=True, output_logits=bool(scored))
        new_tokens = output.sequences[:, width:].tolist()
        scores: list = [None] * len(batch)
        if scored:  # the raw logits of the first step, before any grammar
            first = torch.log_softmax(output.logits[0].float(), dim=-1)[:, scored]
            scores = [tuple(row) for row in first.tolist()]
        completions = []
        for ids, generated, row_scores in zip(batch, new_tokens, scores, strict=True):
            if self.tokenizer.eos_token_id in generated:
                generated = generated[: generated.index(self.tokenizer.eos_token_id) + 1]
            # vLLM holds back a text that ends in U+FFFD (bytes of a character not yet complete) and
            # so never emits it when generation stops there: the reference's programs end without it
            text = self.tokenizer.decode(generated, skip_special_tokens=True).rstrip("\ufffd").strip(" ")
            completions.append(Completion(text, len(ids), len(generated), scores=row_scores))
        return completions
