"""Builds the ProX prompts of both stages, equal id for id to the reference's.

Doc stage: the chat prompt of the whole document, tokenized without added special tokens (the
format carries its own BOS) and cut to its first 2000 ids, sent as ids. Chunk stage: lines numbered
over the whole document, packed greedily into chunks of at most 1500 tokens by per-line counts that
include the tokenizer's default special tokens, wrapped in [doc]...[/doc]; the engine receives the
rendered string tokenized with its default special tokens.

With the refiners' tokenizer, each line is tokenized once and both stages' ids are put together
from the lines' ids (line_tokens); the prompts are the same, id for id, at a third of the CPU.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from prox.engines.base import Prompt
from prox.engines.models import encode_texts
from prox.prompts.line_tokens import DocumentLines, LineTokenizer
from prox.prompts.spec import PromptSpec

_MARK = "\x00prox\x00"  # stands for the document or the chunk while a frame is measured


@dataclass(frozen=True)
class ChunkPrompt:
    index: int  # 0-based chunk of the document
    chunk: str  # the chunk's numbered lines, as the prompt presents them
    ids: tuple[int, ...] | None = None  # the prompt's ids with default special tokens, when put together
    rendered: str | None = None  # the chat prompt, when rendered whole
    around: tuple[str, str] = ("", "")  # else the chat prompt's text before and after the chunk
    lines: range = range(0)  # the document's lines (0-based) that the chunk shows

    @property
    def text(self) -> str:
        """The rendered chat prompt (put together only when asked: prompts sent as ids never need it)."""
        return self.rendered if self.rendered is not None else self.around[0] + self.chunk + self.around[1]

    @property
    def shown_lines(self) -> tuple[int, int]:
        """(first, last) of the lines the chunk shows, as program_grammar takes them."""
        return self.lines.start, self.lines.stop - 1

    def for_engine(self, grammar: str | None = None) -> Prompt:
        """What an engine is sent: the ids where they were put together, else the text."""
        return Prompt(ids=self.ids, text=None if self.ids else self.text, subject=self.chunk, grammar=grammar)


@dataclass(frozen=True)
class _Frame:
    """A stage's prompt around its content: `before` (ids with the stage's special tokens), content,
    then `after` (text, and its ids after a newline)."""

    before: list[int]
    after: str
    after_ids: list[int]
    before_text: str


class PromptBuilder:
    """Prompts for one domain and one tokenizer (any tokenizer with the transformers call API)."""

    def __init__(self, spec: PromptSpec, tokenizer, truncate_document: bool = False):
        """`truncate_document`: cut long documents, not the prompt, so the template stays whole."""
        self.spec = spec
        self.tokenizer = tokenizer
        self.truncate_document = truncate_document
        self.uses_own_template = bool(getattr(tokenizer, "chat_template", None))
        self.pieces = None if self.uses_own_template else LineTokenizer.for_tokenizer(tokenizer)
        self._doc_frame = self._frame(spec.doc.user_template.format(text=_MARK), special_tokens=False, stripped=True)
        self._chunk_frame = self._frame(spec.chunk.user_template.format(chunk=_MARK), special_tokens=True)
        template = spec.chunk.line_template
        numbers_first = template.endswith("{line}") and template.count("{line}") == 1
        self._numbers = _LineNumbers(template.replace("{line}", ""), tokenizer, self.pieces) if numbers_first else None

    def render(self, user: str) -> str:
        """The chat prompt as a string, BOS included."""
        if self.uses_own_template:
            messages = [{"role": "system", "content": self.spec.system_message}, {"role": "user", "content": user}]
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        chat = self.spec.chat
        body = (chat.sys_open + self.spec.system_message + chat.sys_close + user).strip()
        return self.tokenizer.bos_token + chat.inst_open + body + chat.inst_close

    def _frame(self, user: str, special_tokens: bool, stripped: bool = False) -> _Frame | None:
        """The frame of a stage's prompts, when its ids can be put together around the content's: the
        content follows a newline and is followed by text that the render leaves alone (`stripped`:
        but for the content's trailing whitespace, which the render strips)."""
        if self.pieces is None or user.count(_MARK) != 1:
            return None
        before, after = self.render(user).split(_MARK)
        sample = " a \n b \n "
        expected = sample.rstrip() if stripped else sample
        if not before.endswith("\n") or self.render(user.replace(_MARK, sample)) != before + expected + after:
            return None
        after_ids = self.pieces.in_context([after])[0]
        if after_ids is None:
            return None
        return _Frame(encode_texts(self.tokenizer, [before], special_tokens)[0], after, after_ids, before)

    def document_lines(self, texts: list[str]) -> list[DocumentLines | None]:
        """Each text's lines tokenized once (None for all when this tokenizer cannot be put together)."""
        if self.pieces is None:
            return [None] * len(texts)
        return self.pieces.document_lines(texts)

    def doc_prompt_ids(self, texts: list[str], lines: list[DocumentLines | None] | None = None) -> list[list[int]]:
        """Token ids of the doc-stage prompts of `texts`, each at most truncate_prompt_tokens long.
        `lines`: the texts' document_lines, when already at hand."""
        limit = self.spec.doc.truncate_prompt_tokens
        if self._doc_frame is None or self.truncate_document:
            lines = [None] * len(texts)
        elif lines is None:
            lines = self.document_lines(texts)
        ids: list[list[int] | None] = [self._assembled_doc(text, doc_lines, limit) if doc_lines else None
                                       for text, doc_lines in zip(texts, lines, strict=True)]
        whole = [i for i, prompt in enumerate(ids) if prompt is None]
        rendered = [self.render(self.spec.doc.user_template.format(text=texts[i])) for i in whole]
        for i, prompt in zip(whole, encode_texts(self.tokenizer, rendered, special_tokens=False), strict=True):
            fits = not self.truncate_document or len(prompt) <= limit
            ids[i] = prompt if fits else self._fit_document(texts[i], limit)
        return [prompt[:limit] for prompt in ids]

    def _assembled_doc(self, text: str, doc_lines: DocumentLines, limit: int) -> list[int] | None:
        """The doc prompt's first `limit` ids (or all) from the lines' ids; None where they cannot be
        put together (a blank text, a last character that the frame's text may join)."""
        frame, lines = self._doc_frame, doc_lines.lines
        count = len(lines)
        while count and lines[count - 1].strip() == "":
            count -= 1
        if not count:
            return None
        last = lines[count - 1].rstrip()  # the render strips the text's trailing whitespace
        if self.pieces.joins(last, frame.after):
            return None
        ids = list(frame.before)
        newline = self.pieces.newline_inside
        for index in range(count):
            if index:
                ids += newline
            if index == count - 1 and last != lines[index]:
                last_ids = self.pieces.in_context([last])[0]
                if last_ids is None:
                    return None
                ids += last_ids
            else:
                ids += doc_lines.ids[index]
            if len(ids) >= limit:
                return ids
        return ids + frame.after_ids

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
        lines = text.split("\n")
        if self._numbers is not None:
            return list(map(operator.add, self._numbers.texts_for(len(lines)), lines))
        template = self.spec.chunk.line_template
        return [template.format(index=index, line=line) for index, line in enumerate(lines)]

    def line_token_counts(self, lines: list[str]) -> list[int]:
        """Token counts of lines encoded one by one with default special tokens, in one batched call."""
        return [len(ids) for ids in encode_texts(self.tokenizer, lines, special_tokens=True)]

    def chunk_prompts(self, text: str, doc_lines: DocumentLines | None = None) -> list[ChunkPrompt]:
        """The chunk-stage prompts of one document (see chunk_prompts_batch)."""
        return self.chunk_prompts_batch([text], [doc_lines])[0]

    def chunk_prompts_batch(self, texts: list[str],
                            lines: list[DocumentLines | None] | None = None) -> list[list[ChunkPrompt]]:
        """The chunk-stage prompts of each text, with the tokenizer called once for the whole batch
        (each call has a fixed cost that exceeds a document's work). Where a text's lines were tokenized
        (`lines`), counts and prompt ids are put together from them; else the numbered lines are counted."""
        lines = lines if lines is not None else [None] * len(texts)
        pieces = self._numbered_pieces(lines)
        numbered = [self.numbered_lines(text) if text else [] for text in texts]
        counted = [i for i, text in enumerate(texts) if text and pieces[i] is None]
        flat = iter(self.line_token_counts([line for i in counted for line in numbered[i]]))
        counts = {i: [next(flat) for _ in numbered[i]] for i in counted}
        return [self._packed(numbered[i], pieces[i].counts if pieces[i] else counts[i], pieces[i]) if texts[i] else []
                for i in range(len(texts))]

    def _packed(self, lines: list[str], counts: list[int], pieces: _Pieces | None) -> list[ChunkPrompt]:
        frame, template = self._chunk_frame, self.spec.chunk.user_template
        prompts = []
        for index, members in enumerate(pack_ranges(counts, self.spec.chunk.chunk_tokens)):
            chunk = "\n".join(lines[members.start : members.stop])
            if pieces is None:
                prompts.append(ChunkPrompt(index, chunk, rendered=self.render(template.format(chunk=chunk)),
                                           lines=members))
            else:
                ids = self._assembled_chunk(pieces.parts, members)
                prompts.append(ChunkPrompt(index, chunk, ids, around=(frame.before_text, frame.after), lines=members))
        return prompts

    def _numbered_pieces(self, many: list[DocumentLines | None]) -> list[_Pieces | None]:
        """For each document with tokenized lines, each numbered line's token count (alone, with
        special tokens) and its ids after a newline (as the parts to put together: its number's and
        the line's), from the line's ids and its number's; a line that its number's end may join is
        tokenized whole, those of all documents in one call."""
        if self._chunk_frame is None or self._numbers is None:
            return [None] * len(many)
        numbers = self._numbers
        texts = numbers.texts_for(max((len(d.lines) for d in many if d is not None), default=0))
        joined = [(k, i) for k, doc_lines in enumerate(many) if doc_lines is not None
                  for i in self.pieces.joined(texts, doc_lines.lines)]
        numbered = [texts[i] + many[k].lines[i] for k, i in joined]
        whole: dict[int, dict[int, tuple[int, list[int] | None]]] = {}
        for (k, i), alone, after_newline in zip(joined, encode_texts(self.tokenizer, numbered, special_tokens=True),
                                                self.pieces.in_context(numbered), strict=True):
            whole.setdefault(k, {})[i] = (len(alone), after_newline)
        return [None if doc_lines is None else self._document_pieces(doc_lines, whole.get(k, {}))
                for k, doc_lines in enumerate(many)]

    def _document_pieces(self, doc_lines: DocumentLines, whole: dict[int, tuple[int, list[int] | None]]
                         ) -> _Pieces | None:
        """A document's numbered lines as pieces; `whole`: those of its lines tokenized with their number
        (there are at least as many numbers as lines)."""
        numbers = self._numbers
        counts = [alone + len(ids) for alone, ids in zip(numbers.alone, doc_lines.ids, strict=False)]
        parts: list[tuple[list[int] | None, ...]] = [(after, ids) for after, ids
                                                     in zip(numbers.after, doc_lines.ids, strict=False)]
        for index, (alone, after_newline) in whole.items():
            counts[index], parts[index] = alone, (after_newline,)
        if any(part[0] is None for part in parts):  # a number's ids after a newline could not be had
            return None
        return _Pieces(counts, parts)

    def _assembled_chunk(self, parts: list[tuple[list[int], ...]], members: range) -> tuple[int, ...]:
        frame = self._chunk_frame
        ids = list(frame.before)
        newline = self.pieces.newline_inside
        for index in members:
            if index != members.start:
                ids += newline
            for part in parts[index]:
                ids += part
        return tuple(ids + frame.after_ids)

    def chunk_prompt_ids(self, prompts: list[str]) -> list[list[int]]:
        """What the engine makes of chunk prompts: tokenized with default special tokens."""
        return encode_texts(self.tokenizer, prompts, special_tokens=True)


@dataclass(frozen=True)
class _Pieces:
    """A document's numbered lines: each one's token count alone, and its parts' ids after a newline."""

    counts: list[int]
    parts: list[tuple[list[int] | None, ...]]


class _LineNumbers:
    """The chunk stage's line numbers ("[007]") in order: their text, and with a tokenizer whose
    pieces can be put together, each one's token count alone (with special tokens) and ids after a
    newline; made in blocks of a thousand, as documents need them, with one tokenizer call each."""

    def __init__(self, template: str, tokenizer, pieces: LineTokenizer | None):
        self.template, self.tokenizer, self.pieces = template, tokenizer, pieces
        self.texts: list[str] = []
        self.alone: list[int] = []
        self.after: list[list[int] | None] = []

    def texts_for(self, count: int) -> list[str]:
        """At least the first `count` numbers' texts (and their ids)."""
        while len(self.texts) < count:
            new = [self.template.format(index=i) for i in range(len(self.texts), len(self.texts) + 1000)]
            if self.pieces is not None:
                self.alone += [len(ids) for ids in encode_texts(self.tokenizer, new, special_tokens=True)]
                self.after += self.pieces.in_context(new)
            self.texts += new
        return self.texts


def pack_lines(lines: list[str], counts: list[int], budget: int) -> list[str]:
    """The reference's greedy packing, as the chunks' text."""
    return ["\n".join(lines[members.start : members.stop]) for members in pack_ranges(counts, budget)]


def pack_ranges(counts: list[int], budget: int) -> list[range]:
    """The reference's greedy packing of lines by their token counts: a chunk grows while its total
    stays within `budget`; a single line over the budget is a chunk of its own."""
    chunks: list[range] = []
    start, total = 0, 0
    for index, count in enumerate(counts):
        if total + count <= budget:
            total += count
            continue
        if start < index:
            chunks.append(range(start, index))
        start, total = index, count
        if count > budget:
            chunks.append(range(index, index + 1))
            start, total = index + 1, 0
    if start < len(counts):
        chunks.append(range(start, len(counts)))
    return chunks
