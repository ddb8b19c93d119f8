"""Pipeline step: runs each document's stored programs and attaches the per-document record."""

from __future__ import annotations

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from prox.execution import Action, Outcome, Policy, Reason, execute_programs
from prox.execution.words import count_words
from prox.pipeline.shards import ShardEnd


def _not_run(text: str, invalid_input: bool) -> Outcome:
    """A document whose programs never ran: invalid input is dropped, a document the engine could not
    serve is kept unchanged. Its words count in the run's words all the same."""
    words = count_words(text)
    if invalid_input:
        return Outcome(text, Action.DROPPED, Reason.INVALID_INPUT, words_before=words)
    return Outcome(text, Action.KEPT, Reason.ENGINE_ERROR, words_before=words, words_after=words)


class ApplyPrograms(PipelineStep):
    """Executes `metadata.doc_program` then `metadata.chunk_program` on the text (null: stage not run)."""

    name = "prox apply programs"
    type = "⚙️ - PROCESS"

    def __init__(self, policy: Policy, keep_raw: bool = False):
        """`keep_raw`: keep the input text in `metadata.raw_content`."""
        super().__init__()
        self.policy = policy
        self.keep_raw = keep_raw

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for document in data:
            if isinstance(document, ShardEnd):
                yield document
                continue
            metadata = document.metadata
            with self.track_time():
                if metadata.get("prox_input_error") or metadata.get("prox_engine_error"):
                    outcome = _not_run(document.text, invalid_input=bool(metadata.get("prox_input_error")))
                else:
                    outcome = execute_programs(document.text, metadata.get("doc_program"),
                                               metadata.get("chunk_program"), self.policy,
                                               drop_probability=metadata.get("doc_drop_probability"))
            if self.keep_raw:
                metadata["raw_content"] = document.text
            document.text = outcome.text
            metadata.update(outcome.record())
            self.stat_update(outcome.action.value)
            yield document
