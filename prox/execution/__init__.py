"""The interpreter: runs parsed programs on documents and decides keep, modify or drop."""

from prox.execution.chunk_level import ChunkResult, decide, execute_chunk, merge_ranges
from prox.execution.doc_level import doc_drops
from prox.execution.document import execute_programs
from prox.execution.outcome import Action, Outcome, Reason
from prox.execution.policy import MEASURING, Policy

__all__ = ["MEASURING", "Action", "ChunkResult", "Outcome", "Policy", "Reason", "decide", "doc_drops", "execute_chunk",
           "execute_programs", "merge_ranges"]
