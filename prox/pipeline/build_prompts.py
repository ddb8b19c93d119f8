"""Pipeline step for dry runs: builds every prompt of both stages, as if the doc stage kept everything.

Needs only the tokenizers. The prompts ride with their document in `metadata.prox_prompts` to the
writer (OUT/prompts/) and the stats.
"""

from __future__ import annotations

from datatrove.data import DocumentsPipeline
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
        spec = load_prompts(self.domain)
        builders = {stage: PromptBuilder(spec, load_tokenizer(model), self.truncate_document)
                    for stage, model in self.models.items()}
        shared = len(builders) == 2 and self.models["doc"] == self.models["chunk"]  # lines tokenized once
        for batch, end in batches(data, self.batch_size):
            todo = [d for d in batch if needs_request(d, "doc")]
            rows: dict[str, list[dict]] = {d.id: [] for d in todo}
            with self.track_time("batch"):
                lines = builders["chunk"].document_lines([d.text for d in todo]) if shared else None
                if "doc" in builders:
                    texts = [builders["doc"].render(d.text) for d in todo]
                    ids = builders["doc"].doc_prompt_ids([d.text for d in todo], lines)
                    for document, text, prompt_ids in zip(todo, texts, ids, strict=True):
                        rows[document.id].append(_row(document.id, "doc", 0, text, prompt_ids))
                if "chunk" in builders:
                    builder = builders["chunk"]
                    for document, prompts in zip(todo, chunk_prompts_of(builder, todo, lines), strict=True):
                        whole = [p.text for p in prompts if p.ids is None]  # those not put together
                        encoded = iter(builder.chunk_prompt_ids(whole) if whole else [])
                        ids = [list(p.ids) if p.ids is not None else next(encoded) for p in prompts]
                        rows[document.id] += [_row(document.id, "chunk", p.index, p.text, i)
                                              for p, i in zip(prompts, ids, strict=True)]
            for document in todo:
                document.metadata["prox_prompts"] = rows[document.id]
            yield from batch
            if end is not None:
                yield end


def _row(doc_id: str, stage: str, chunk: int, prompt: str, ids: list[int]) -> dict:
    return {"id": doc_id, "stage": stage, "chunk": chunk, "prompt": prompt, "prompt_token_ids": ids}
