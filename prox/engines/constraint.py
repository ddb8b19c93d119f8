"""--constrained on the transformers engine: a logits processor that lets each row of a batch write only
what its grammar allows next, with llguidance (the grammar library vLLM uses for prox's grammars)."""

from __future__ import annotations

from prox.engines.base import EngineError


class GrammarConstraint:
    """For `model.generate(logits_processor=[...])`: one llguidance matcher per row (None: free). Each
    call first hands every row's matcher the token generated last, then masks what may come next."""

    def __init__(self, tokenizer, grammars: list[str | None]):
        """`tokenizer`: llguidance's (llguidance_tokenizer()), built once per engine."""
        import llguidance
        import llguidance.torch

        self._torch = llguidance.torch
        self.matchers = [None if grammar is None else
                         llguidance.LLMatcher(tokenizer, llguidance.LLMatcher.grammar_from_lark(grammar))
                         for grammar in grammars]
        for matcher in self.matchers:
            if matcher is not None and matcher.is_error():
                raise EngineError(f"the grammar does not compile: {matcher.get_error()}")
        self.bitmask = llguidance.torch.allocate_token_bitmask(len(grammars), tokenizer.vocab_size)
        self.started = False

    def __call__(self, input_ids, scores):
        for row, matcher in enumerate(self.matchers):
            if matcher is None:
                continue
            if self.started and not matcher.is_stopped():
                matcher.consume_token(int(input_ids[row, -1]))
            self._torch.fill_next_token_bitmask(matcher, self.bitmask, row)
        self.started = True
        self._torch.apply_token_bitmask_inplace(scores, self.bitmask.to(scores.device))
        return scores


def llguidance_tokenizer(tokenizer, vocab_size: int):
    """llguidance's view of a Hugging Face tokenizer (about a second to build)."""
    try:
        import llguidance.hf
    except ImportError as error:
        raise EngineError("--constrained with the transformers engine needs llguidance: "
                          "pip install 'prox[constrained]'") from error
    return llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size)
