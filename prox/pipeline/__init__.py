"""The refining pipeline as datatrove steps: read shards, run programs, write outputs, count."""

from prox.pipeline.apply_programs import ApplyPrograms
from prox.pipeline.input_files import list_input
from prox.pipeline.reader import ShardReader
from prox.pipeline.runs import NoInputError, run_shards
from prox.pipeline.shards import OutputLayout, ShardEnd
from prox.pipeline.stats import ShardStats, merge_summaries
from prox.pipeline.writer import ShardWriter

__all__ = ["ApplyPrograms", "NoInputError", "OutputLayout", "ShardEnd", "ShardReader", "ShardStats",
           "ShardWriter", "list_input", "merge_summaries", "run_shards"]
