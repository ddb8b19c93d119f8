"""Builds the ProX prompts of both stages, equal id for id to the reference's.

Doc stage: the chat prompt of the whole document, tokenized without added special tokens (the
format carries its own BOS) and cut to its first 2000 ids, sent as ids. Chunk stage: lines numbered
over the whole document, packed greedily into chunks of at most 1500 tokens by per-line counts that
include the tokenizer's default special tokens, wrapped in [doc]...[/doc]; the rendered string is
what the engine receives and tokenizes with its default special tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from prox.engines.models import encode_texts
from prox.prompts.spec import PromptSpec


@dataclass(frozen=True)
class ChunkPrompt:
    index: int  # 0-based chunk of the document
    text: str  # the rendered chat prompt, as the engine receives it
    chunk: str  # the chunk's numbered lines, as the prompt presents them


class PromptBuilder:
    """Prompts for one domain and one tokenizer (any tokenizer with the transformers call API)."""

    def __init__(self, spec: PromptSpec, tokenizer, truncate_document: bool = False):
        """`truncate_document`: cut long documents, not the prompt, so the template stays whole."""
        self.spec = spec
        self.tokenizer = tokenizer
        self.truncate_document = truncate_document
        self.uses_own_template = bool(getattr(tokenizer, "chat_template", None))

    def render(self, user: str) -> str:
        """The chat prompt as a string, BOS included."""
        if self.uses_own_template:
            messages = [{"role": "system", "content": self.spec.system_message}, {"role": "user", "content": user}]
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        chat = self.spec.chat
        body = (chat.sys_open + self.spec.system_message + chat.sys_close + user).strip()
        return self.tokenizer.bos_token + chat.inst_open + body + chat.inst_close

    def doc_prompt_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of the doc-stage prompts of `texts`, each at most truncate_prompt_tokens long."""
        limit = self.spec.doc.truncate_prompt_tokens
        rendered = [self.render(self.spec.doc.user_template.format(text=text)) for text in texts]
        ids = encode_texts(self.tokenizer, rendered, special_tokens=False)
        if not self.truncate_document:
            return [prompt[:limit] for prompt in ids]
        return [prompt if len(prompt) <= limit else self._fit_document(text, limit)
                for text, prompt in zip(texts, ids, strict=True)]

    def _fit_document(self, text: str, limit: int) -> list[int]:
        """Cuts the document (at a token boundary) until the whole prompt fits in `limit` ids."""
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = encoded["offset_mapping"]
        overhead = len(self.tokenizer(self.render(""), add_special_tokens=False)["input_ids"])
        keep = max(0, limit - overhead)
        while True:
            cut = text[: offsets[keep - 1][1]] if keep > 0 else ""
            ids = self.tokenizer(self.render(self.spec.doc.user_template.format(text=cut)),
                                 add_special_tokens=False)["input_ids"]
            if len(ids) <= limit or keep == 0:
                return ids[:limit]
            keep = max(0, keep - (len(ids) - limit))

    def numbered_lines(self, text: str) -> list[str]:
        template = self.spec.chunk.line_template
        return [template.format(index=index, line=line) for index, line in enumerate(text.split("\n"))]

    def line_token_counts(self, lines: list[str]) -> list[int]:
        """Token counts of lines encoded one by one with default special tokens, in one batched call."""
        return [len(ids) for ids in encode_texts(self.tokenizer, lines, special_tokens=True)]

    def chunk_prompts(self, text: str, counts: list[int] | None = None) -> list[ChunkPrompt]:
        """The chunk-stage prompts of one document; `counts` may come from a batched call over many."""
        if text == "":
            return []
        lines = self.numbered_lines(text)
        counts = self.line_token_counts(lines) if counts is None else counts
        template = self.spec.chunk.user_template
        return [ChunkPrompt(index, self.render(template.format(chunk=chunk)), chunk)
                for index, chunk in enumerate(pack_lines(lines, counts, self.spec.chunk.chunk_tokens))]

    def chunk_prompt_ids(self, prompts: list[str]) -> list[list[int]]:
        """What the engine makes of chunk prompts: tokenized with default special tokens."""
        return encode_texts(self.tokenizer, prompts, special_tokens=True)


def pack_lines(lines: list[str], counts: list[int], budget: int) -> list[str]:
    """The reference's greedy packing: a chunk grows while its token total stays within `budget`;
    a single line over the budget is a chunk of its own."""
    chunks: list[str] = []
    current: list[str] = []
    total = 0
    for line, count in zip(lines, counts, strict=True):
        if total + count <= budget:
            current.append(line)
            total += count
            continue
        if current:
            chunks.append("\n".join(current))
        current, total = [line], count
        if count > budget:
            chunks.append(line)
            current, total = [], 0
    if current:
        chunks.append("\n".join(current))
    return chunks
