"""Pipeline step for dry runs: builds every prompt of both stages, as if the doc stage kept everything.

Needs only the tokenizers. The prompts ride with their document in `metadata.prox_prompts` to the
writer (OUT/prompts/) and the stats.
"""

from __future__ import annotations

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from prox.engines import load_tokenizer
from prox.pipeline.generate_programs import batches, chunk_prompts_of, needs_request
from prox.prompts import PromptBuilder, load_prompts


class BuildPrompts(PipelineStep):
    name = "prox build prompts"
    type = "📝 - PROMPTS"

    def __init__(self, models: dict[str, str], domain: str = "web", batch_size: int = 256,
                 truncate_document: bool = False):
        """`models`: the model (for its tokenizer) of each stage to build prompts for."""
        super().__init__()
        self.models, self.domain = models, domain
        self.batch_size, self.truncate_document = batch_size, truncate_document

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        builders = prompt_builders(self.models, self.domain, self.truncate_document)
        for batch, end in batches(data, self.batch_size):
            todo = [d for d in batch if needs_request(d, "doc")]
            with self.track_time("batch"):
                rows = document_prompts(builders, todo, self.models)
            for document, prompts in zip(todo, rows, strict=True):
                document.metadata["prox_prompts"] = prompts
            yield from batch
            if end is not None:
                yield end


def prompt_builders(models: dict[str, str], domain: str, truncate_document: bool) -> dict[str, PromptBuilder]:
    spec = load_prompts(domain)
    return {stage: PromptBuilder(spec, load_tokenizer(model), truncate_document) for stage, model in models.items()}


def document_prompts(builders: dict[str, PromptBuilder], documents: list[Document],
                     models: dict[str, str]) -> list[list[dict]]:
    """Each document's prompts as `prox refine` sends them: the doc prompt, then its chunks' in order.
    A row: id, stage, chunk, prompt (text), prompt_token_ids, subject (what the prompt presents: the
    document, or the chunk's numbered lines) and lines (the document lines a chunk shows)."""
    shared = len(builders) == 2 and models["doc"] == models["chunk"]  # lines tokenized once
    rows: list[list[dict]] = [[] for _ in documents]
    lines = builders["chunk"].document_lines([d.text for d in documents]) if shared else None
    if "doc" in builders:
        texts = [builders["doc"].render(d.text) for d in documents]
        ids = builders["doc"].doc_prompt_ids([d.text for d in documents], lines)
        for k, (document, text, prompt_ids) in enumerate(zip(documents, texts, ids, strict=True)):
            rows[k].append(_row(document.id, "doc", 0, text, prompt_ids) | {"subject": document.text,
                                                                           "lines": range(0)})
    if "chunk" in builders:
        builder = builders["chunk"]
        for k, (document, prompts) in enumerate(zip(documents, chunk_prompts_of(builder, documents, lines),
                                                    strict=True)):
            whole = [p.text for p in prompts if p.ids is None]  # those not put together
            encoded = iter(builder.chunk_prompt_ids(whole) if whole else [])
            ids = [list(p.ids) if p.ids is not None else next(encoded) for p in prompts]
            rows[k] += [_row(document.id, "chunk", p.index, p.text, i) | {"subject": p.chunk, "lines": p.lines}
                        for p, i in zip(prompts, ids, strict=True)]
    return rows


def _row(doc_id: str, stage: str, chunk: int, prompt: str, ids: list[int]) -> dict:
    return {"id": doc_id, "stage": stage, "chunk": chunk, "prompt": prompt, "prompt_token_ids": ids}
