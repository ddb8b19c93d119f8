"""Pipeline step: asks a refining model for each document's program at one stage (doc or chunk).

Documents are taken in batches (a shard's end closes the batch); the step stores the model's
output in `metadata.doc_program` or `metadata.chunk_program` and leaves execution to
ApplyPrograms, so `prox apply` on the stored programs gives the same result. Documents that need
no request (empty text, unreadable input, dropped by the doc program) pass through untouched.
A prompt the engine cannot serve is recorded in `metadata.prox_engine_error`. At the doc stage a
model's probability of dropping each document goes to `metadata.doc_drop_probability`; with
`drop_threshold` it decides, and the model is asked for its first token only. The engine runs in
a thread of its own, one batch ahead of the CPU work, so a GPU is not left waiting for prompts; it
starts as the step starts, so the chunk stage's engine loads while the doc stage generates, and it
is shared with the other stage when both name the same model (engines.shared).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.logging import logger

from prox.engines import Completion, EngineError, EngineSpec, GenerationSettings, Prompt, load_tokenizer
from prox.engines.shared import shared_engine
from prox.execution import doc_drops
from prox.execution.doc_level import threshold_decision
from prox.language import parse_program
from prox.language.grammar import program_grammar
from prox.pipeline.progress import StageProgress
from prox.pipeline.shards import ShardEnd
from prox.prompts import ChunkPrompt, PromptBuilder, load_prompts
from prox.prompts.decisions import DecisionTokens, decision_tokens
from prox.prompts.line_tokens import DocumentLines

STAGES = ("doc", "chunk")


def needs_request(document: Document, stage: str) -> bool:
    """Whether `stage` sends a request for this document."""
    metadata = document.metadata
    if metadata.get("prox_input_error") or metadata.get("prox_engine_error") or not document.text.strip():
        return False
    return stage == "doc" or not doc_drops(parse_program(metadata.get("doc_program"), "doc"))


@dataclass
class _InFlight:
    """A batch whose completions are being generated."""

    batch: list[Document]
    end: ShardEnd | None
    todo: list[Document]  # the documents that sent requests
    prompts: list[list[Prompt]]
    result: Future | None  # (completions, seconds of generation)


def _generate(engine: Future, prompts: list[Prompt], settings: GenerationSettings) -> tuple[list[Completion], float]:
    tick = time.perf_counter()
    completions = engine.result().generate(prompts, settings)
    return completions, time.perf_counter() - tick


def batches(data: DocumentsPipeline, size: int) -> Iterator[tuple[list[Document], ShardEnd | None]]:
    """Groups documents into batches of at most `size`; a shard's end closes a batch and rides with it."""
    batch: list[Document] = []
    for document in data:
        if isinstance(document, ShardEnd):
            yield batch, document
            batch = []
            continue
        batch.append(document)
        if len(batch) >= size:
            yield batch, None
            batch = []
    if batch:
        yield batch, None


def chunk_prompts_of(builder: PromptBuilder, documents: list[Document],
                     lines: list[DocumentLines | None] | None = None) -> list[list[ChunkPrompt]]:
    """Chunk prompts per document, from the documents' tokenized lines (`lines`, or tokenized here
    in one call)."""
    if lines is None:
        lines = builder.document_lines([d.text for d in documents])
    return builder.chunk_prompts_batch([d.text for d in documents], lines)


class LineHandoff:
    """The doc stage's tokenized lines of each document, taken by the chunk stage of the same
    process so that no line is tokenized twice; never written anywhere."""

    def __init__(self):
        self._lines: dict[int, DocumentLines | None] = {}

    def put(self, documents: list[Document], lines: list[DocumentLines | None]) -> None:
        for document, doc_lines in zip(documents, lines, strict=True):
            self._lines[id(document)] = doc_lines

    def take(self, batch: list[Document], builder: PromptBuilder, documents: list[Document]) -> list:
        """The lines of `documents` (some of `batch`): handed on, or tokenized here for those that
        were not (a doc stage that reads text, not prompts). Forgets the whole batch."""
        handed = {key: self._lines.pop(key) for key in map(id, batch) if key in self._lines}
        missing = [d for d in documents if id(d) not in handed]
        handed |= dict(zip(map(id, missing), builder.document_lines([d.text for d in missing]), strict=True))
        return [handed[id(d)] for d in documents]


class GeneratePrograms(PipelineStep):
    type = "🤖 - MODEL"

    def __init__(self, stage: str, engine: EngineSpec, domain: str = "web", batch_size: int = 256,
                 truncate_document: bool = False, handoff: LineHandoff | None = None, constrained: bool = False,
                 drop_threshold: float | None = None):
        """`handoff`: shared by the two stages when they use the same tokenizer: the doc stage puts
        each document's tokenized lines there, the chunk stage takes them. `constrained`: each prompt
        carries the grammar its program must follow. `drop_threshold`: the doc stage drops a document
        when the model's probability of dropping it is at least this (prox/prompts/decisions.py)."""
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}")
        self.name = f"prox {stage}-stage programs"  # before the base class names the step's stats
        super().__init__()
        self.stage, self.engine_spec, self.domain = stage, engine, domain
        self.batch_size, self.truncate_document = batch_size, truncate_document
        self.handoff = handoff
        self.constrained = constrained and not engine.reads_subject  # the rules engine writes valid programs
        self.drop_threshold = drop_threshold if stage == "doc" else None
        self.decisions: DecisionTokens | None = None

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        spec = load_prompts(self.domain)
        tokenizer = load_tokenizer(self.engine_spec.tokenizer_name)
        builder = PromptBuilder(spec, tokenizer, self.truncate_document)
        self.decisions = self._decision_tokens(tokenizer)
        settings = self._settings(spec)
        # One thread owns the engine (built and used there) so generation overlaps the CPU work of
        # the next batch: reading, prompt building, and the later steps on the previous batch.
        generator = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"prox-{self.stage}-engine")
        engine = generator.submit(self._create_engine)
        in_flight: _InFlight | None = None
        progress = StageProgress(self.stage)
        try:
            for batch, end in batches(data, self.batch_size):
                todo = [d for d in batch if needs_request(d, self.stage)]
                prompts: list[list[Prompt]] = []
                result = None
                tick = time.perf_counter()
                handing = self.handoff is not None and self.stage == "chunk"
                lines = self.handoff.take(batch, builder, todo) if handing else None
                if todo:
                    prompts = self._prompts(builder, todo, lines)
                    self.stat_update("prompt_building_ms", value=round(1000 * (time.perf_counter() - tick)))
                    result = generator.submit(_generate, engine, [p for ps in prompts for p in ps], settings)
                if in_flight is not None:
                    yield from self._finish(in_flight, progress)
                in_flight = _InFlight(batch, end, todo, prompts, result)
            if in_flight is not None:
                yield from self._finish(in_flight, progress)
        finally:
            generator.shutdown(wait=True, cancel_futures=True)

    def _decision_tokens(self, tokenizer) -> DecisionTokens | None:
        """What a model's doc stage scores (None: the chunk stage, the rules engine, or a tokenizer in
        which drop_doc() and keep_doc() start alike, which --drop-threshold cannot work with)."""
        if self.stage == "chunk" or self.engine_spec.reads_subject:
            return None
        try:
            return decision_tokens(tokenizer)
        except ValueError as error:
            if self.drop_threshold is not None:
                raise
            logger.warning(f"no drop probabilities: {error}")
            return None

    def _settings(self, spec) -> GenerationSettings:
        """A model's doc stage scores the decision tokens; with a threshold it generates one token."""
        if self.stage == "chunk":
            return GenerationSettings(spec.chunk.max_new_tokens)
        if self.decisions is None:
            return GenerationSettings(spec.doc.max_new_tokens)
        return GenerationSettings(1 if self.drop_threshold is not None else spec.doc.max_new_tokens,
                                  self.decisions.ids)

    def _create_engine(self):
        tick = time.perf_counter()
        engine = shared_engine(self.engine_spec)
        self.stat_update("engine_start_ms", value=round(1000 * (time.perf_counter() - tick)))
        return engine

    def _finish(self, done: _InFlight, progress: StageProgress) -> DocumentsPipeline:
        """Waits for a batch's completions, stores its programs, and passes the batch on."""
        tokens = 0
        if done.result is not None:
            tick = time.perf_counter()
            completions, seconds = done.result.result()
            self.stat_update("waiting_for_engine_ms", value=round(1000 * (time.perf_counter() - tick)))
            self.stat_update("generation_ms", value=round(1000 * seconds))
            tokens = self._store(done.todo, done.prompts, completions)
        progress.add(len(done.batch), len(done.todo), tokens)
        yield from done.batch
        if done.end is not None:
            yield done.end

    def _prompts(self, builder: PromptBuilder, documents: list[Document],
                 lines: list[DocumentLines | None] | None) -> list[list[Prompt]]:
        """The prompts of each document: one at the doc stage, one per chunk at the chunk stage
        (as ids when they were put together from the lines' ids, else as text for the engine)."""
        if self.stage == "doc" and self.engine_spec.reads_subject:
            return [[Prompt(subject=d.text)] for d in documents]
        if self.stage == "doc":
            texts = [d.text for d in documents]
            if self.handoff is not None:
                lines = builder.document_lines(texts)
                self.handoff.put(documents, lines)
            ids = builder.doc_prompt_ids(texts, lines)
            grammar = program_grammar("doc") if self.constrained and self.drop_threshold is None else None
            return [[Prompt(ids=tuple(i), subject=d.text, grammar=grammar)]
                    for i, d in zip(ids, documents, strict=True)]
        return [[p.for_engine(self._chunk_grammar(p)) for p in document_chunks]
                for document_chunks in chunk_prompts_of(builder, documents, lines)]

    def _chunk_grammar(self, prompt: ChunkPrompt) -> str | None:
        return program_grammar("chunk", prompt.shown_lines) if self.constrained else None

    def _store(self, documents: list[Document], prompts: list[list[Prompt]], completions: list) -> int:
        """Fills in the stage's program of each document; returns the prompt tokens sent."""
        completions = iter(completions)
        key = f"{self.stage}_program"
        tokens = 0
        for document, document_prompts in zip(documents, prompts, strict=True):
            outputs = [next(completions) for _ in document_prompts]
            tokens += sum(c.prompt_tokens for c in outputs)
            self.stat_update(f"{self.stage}_requests", value=len(outputs))
            errors = [c.error for c in outputs if c.error]
            if errors:
                document.metadata["prox_engine_error"] = f"{self.stage} stage: {errors[0]}"
                self.stat_update(f"{self.stage}_engine_errors")
            else:
                document.metadata[key] = "\n".join(c.text for c in outputs)
                if self.decisions is not None:
                    self._decide(document, outputs[0])
        return tokens

    def _decide(self, document: Document, completion: Completion) -> None:
        """Stores the model's probability of dropping the document; with a threshold, decides by it."""
        if completion.scores is None:
            if self.drop_threshold is not None:
                raise EngineError("the engine gave no log-probabilities of the decision tokens, which --drop-threshold "
                                  "needs (vLLM's OpenAI server gives them for its logprob_token_ids field)")
            return
        probability = self.decisions.drop_probability(completion.scores)
        document.metadata["doc_drop_probability"] = probability
        if self.drop_threshold is not None:
            document.metadata["doc_program"] = threshold_decision(probability, self.drop_threshold).call
