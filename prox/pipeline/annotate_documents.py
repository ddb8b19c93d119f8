"""Pipeline step of `prox annotate`: asks the teacher about each document and its chunks, and turns
the answers that pass every check into fine-tuning examples.

Each example's prompt is exactly what `prox refine` sends for that document or chunk (the same
prompt builder, template and chunking), and its completion the program the refiner should write.
Answers that fail a check are refused and recorded with their category. The examples ride with
their document (`metadata.prox_annotation_rows`) to the writer, the counts (`prox_annotation`) to the
stats. A document's examples all go to one split, chosen from its id, so reruns agree.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import asdict, dataclass

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from prox.annotation.chunk_programs import ChunkExample, checked_example, chunk_text, merged_program, read_program
from prox.annotation.doc_labels import LabelRule, read_scores
from prox.annotation.refusals import EMPTY_TEXT, INPUT_ERROR, TEACHER_ERROR, Refused
from prox.annotation.rewrite_diff import derive, read_rewrite
from prox.annotation.teacher_prompts import prompts_for
from prox.annotation.teachers import Teacher, TeacherRequest, TeacherSpec
from prox.engines.base import Completion
from prox.language import DropDoc, KeepChunk, KeepDoc
from prox.pipeline.build_prompts import document_prompts, prompt_builders
from prox.pipeline.generate_programs import batches
from prox.pipeline.progress import StageProgress
from prox.pipeline.stats import AnnotationTally

METHODS = ("programs", "rewrite")


@dataclass(frozen=True)
class AnnotationSettings:
    stage: str = "all"  # "doc", "chunk" or "all"
    method: str = "programs"  # chunk level: "programs" (per kind of noise, merged) or "rewrite"
    keep_educational: int = 3  # the label rule (LabelRule)
    keep_educational_with_format: int = 2
    keep_format: int = 4
    max_removal: float = 0.8  # refuse a chunk program that removes more of the chunk's words than this
    validation_share: float = 0.1  # share of documents held out
    language: str = "en"  # of the teacher's prompts (programs/teacher/*.yaml)

    @property
    def stages(self) -> tuple[str, ...]:
        return ("doc", "chunk") if self.stage == "all" else (self.stage,)

    @property
    def label_rule(self) -> LabelRule:
        return LabelRule(self.keep_educational, self.keep_educational_with_format, self.keep_format)

    def to_dict(self) -> dict:
        return asdict(self)


def split_of(document_id: str, validation_share: float) -> str:
    """"validation" for a stable `validation_share` of ids, else "train"."""
    return "validation" if zlib.crc32(document_id.encode()) % 10_000 < validation_share * 10_000 else "train"


class _Record:
    """One document's examples, refusals and counts."""

    def __init__(self, document: Document, split: str):
        self.document, self.split = document, split
        self.rows: list[tuple[str, dict]] = []
        self.counts: Counter = Counter()
        self.counters: dict[str, Counter] = {name: Counter() for name in AnnotationTally.COUNTERS}

    def example(self, prompt: dict, completion: str, **fields) -> None:
        row = {k: prompt[k] for k in ("id", "stage", "chunk", "prompt", "prompt_token_ids")}
        self.rows.append((f"{prompt['stage']}-{self.split}", row | {"completion": completion} | fields))
        self.counts[f"{prompt['stage']}_examples"] += 1
        self.counts[self.split] += 1

    def refused(self, stage: str, chunk: int, prompt_name: str, refusal: Refused, answer: str = "") -> None:
        self.rows.append(("refused", {"id": self.document.id, "stage": stage, "chunk": chunk,
                                      "prompt_name": prompt_name, "category": refusal.category,
                                      "message": refusal.message, "answer": answer}))
        self.counters["refused_by_category"][refusal.category] += 1

    def finish(self) -> None:
        self.document.metadata["prox_annotation_rows"] = self.rows
        self.document.metadata["prox_annotation"] = dict(self.counts) | {
            name: dict(counter) for name, counter in self.counters.items()}


class AnnotateDocuments(PipelineStep):
    name = "prox annotate"
    type = "🏷️ - ANNOTATE"

    def __init__(self, teacher: TeacherSpec, tokenizer: str, domain: str = "web", batch_size: int = 64,
                 truncate_document: bool = False, settings: AnnotationSettings | None = None):
        """`tokenizer`: the refiner's to be (its prompts are built with it, as prox refine will)."""
        super().__init__()
        self.teacher, self.tokenizer, self.domain = teacher, tokenizer, domain
        self.batch_size, self.truncate_document = batch_size, truncate_document
        self.settings = settings or AnnotationSettings()

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        models = dict.fromkeys(self.settings.stages, self.tokenizer)
        builders = prompt_builders(models, self.domain, self.truncate_document)
        teacher = self.teacher.create()
        progress = StageProgress("annotate")
        try:
            for batch, end in batches(data, self.batch_size):
                with self.track_time("batch"):
                    asked = self._annotate(batch, builders, models, teacher)
                progress.add(len(batch), asked, 0)
                yield from batch
                if end is not None:
                    yield end
        finally:
            if hasattr(teacher, "close"):
                teacher.close()

    def _annotate(self, batch: list[Document], builders: dict, models: dict, teacher: Teacher) -> int:
        """Annotates the batch's documents in place; returns how many were sent to the teacher."""
        settings = self.settings
        records = [_Record(d, split_of(d.id, settings.validation_share)) for d in batch]
        todo = []
        for record in records:
            metadata = record.document.metadata
            if metadata.get("prox_input_error") or not record.document.text.strip():
                refusal = (Refused(INPUT_ERROR, metadata["prox_input_error"]) if metadata.get("prox_input_error")
                           else Refused(EMPTY_TEXT, "the document has no text"))
                record.refused("doc" if "doc" in settings.stages else "chunk", 0, "", refusal)
                record.counts["doc_refused" if "doc" in settings.stages else "doc_skipped"] += 1
            else:
                todo.append(record)
                if "doc" not in settings.stages:
                    record.counts["doc_skipped"] += 1
        prompts = document_prompts(builders, [r.document for r in todo], models)
        requests: list[TeacherRequest] = []
        asked: list[tuple[_Record, dict, list[int]]] = []  # a prompt, and its requests' positions
        for record, rows in zip(todo, prompts, strict=True):
            for row in rows:
                new = self._requests(record.document, row)
                asked.append((record, row, list(range(len(requests), len(requests) + len(new)))))
                requests += new
        answers = teacher.answer(requests) if requests else []
        for record, row, positions in asked:
            pairs = [(requests[i], answers[i]) for i in positions]
            if row["stage"] == "doc":
                self._doc_example(record, row, pairs[0], teacher.name)
            else:
                record.counts["chunks"] += 1
                self._chunk_example(record, row, pairs, teacher.name)
        for record in records:
            record.finish()
        return len(todo)

    def _requests(self, document: Document, row: dict) -> list[TeacherRequest]:
        language = self.settings.language
        if row["stage"] == "doc":
            return [TeacherRequest(prompt, document.text) for prompt in prompts_for("doc_scores", language)]
        lines = row["lines"]
        ends = lines.stop == document.text.count("\n") + 1
        if self.settings.method == "rewrite":
            plain = chunk_text(document.text, lines)
            return [TeacherRequest(p, row["subject"], plain, ends) for p in prompts_for("chunk_rewrite", language)]
        return [TeacherRequest(p, row["subject"], ends_document=ends) for p in prompts_for("chunk_programs", language)]

    def _doc_example(self, record: _Record, row: dict, pair: tuple[TeacherRequest, Completion], teacher: str) -> None:
        request, answer = pair
        scores = Refused(TEACHER_ERROR, answer.error) if answer.error else read_scores(answer.text)
        if isinstance(scores, Refused):
            record.refused("doc", 0, request.prompt.name, scores, answer.text)
            record.counts["doc_refused"] += 1
            return
        keep = self.settings.label_rule.keeps(scores)
        completion = (KeepDoc(1, "keep_doc") if keep else DropDoc(1, "drop_doc")).call
        record.example(row, completion, teacher=teacher, educational_score=scores.educational,
                       format_score=scores.format, label="keep" if keep else "drop")
        record.counts["keep" if keep else "drop"] += 1

    def _chunk_example(self, record: _Record, row: dict, pairs: list[tuple[TeacherRequest, Completion]],
                       teacher: str) -> None:
        """One example from the chunk's answers when every answer and their merge pass the checks."""
        text, lines = record.document.text, row["lines"]
        found, refusals = [], []
        for request, answer in pairs:
            result = self._read_chunk_answer(text, lines, answer)
            if isinstance(result, Refused):
                refusals.append((request.prompt.name, result, answer.text))
            else:
                found.append((request, result))
        example = None if refusals else self._merged(record, text, lines, found)
        if isinstance(example, Refused):
            refusals.append(("merged", example, ""))
        if refusals:
            for name, refusal, answer in refusals:
                record.refused("chunk", row["chunk"], name, refusal, answer)
            record.counts["chunk_refused"] += 1
            return
        record.example(row, example.program, teacher=teacher, method=self.settings.method, first_line=lines.start,
                       last_line=lines.stop - 1, removed_lines=list(example.removed_lines), kinds=list(example.kinds))

    def _read_chunk_answer(self, text: str, lines: range, answer: Completion):
        """A program (method programs), a derived program with its expected result (rewrite), or Refused."""
        if answer.error:
            return Refused(TEACHER_ERROR, answer.error)
        if self.settings.method == "programs":
            return read_program(answer.text, text, lines)
        rewrite = read_rewrite(answer.text)
        return rewrite if isinstance(rewrite, Refused) else derive(text, lines, rewrite)

    def _merged(self, record: _Record, text: str, lines: range, found: list) -> ChunkExample | Refused:
        max_removal = self.settings.max_removal
        if self.settings.method == "rewrite":
            (_, derived), = found
            record.counters["rewrite_discarded"].update(derived.discarded)
            return checked_example(text, lines, derived.program, derived.removed_lines, max_removal,
                                   expected=derived.expected)
        kinds = tuple(request.prompt.kind for request, program in found
                      if any(not isinstance(op, KeepChunk) for op in program.operations))
        program, removed = merged_program([program for _, program in found])
        example = checked_example(text, lines, program, removed, max_removal, kinds)
        if not isinstance(example, Refused):
            record.counters["programs_by_kind"].update(kinds)
        return example
