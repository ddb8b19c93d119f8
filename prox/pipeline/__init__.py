"""The refining pipeline as datatrove steps: read shards, run programs, write outputs, count."""

from prox.pipeline.apply_programs import ApplyPrograms
from prox.pipeline.reader import ShardReader, input_folder_and_files
from prox.pipeline.runs import NoInputError, run_shards
from prox.pipeline.shards import OutputLayout, ShardEnd
from prox.pipeline.stats import ShardStats, merge_summaries
from prox.pipeline.writer import ShardWriter

__all__ = ["ApplyPrograms", "NoInputError", "OutputLayout", "ShardEnd", "ShardReader", "ShardStats",
           "ShardWriter", "input_folder_and_files", "merge_summaries", "run_shards"]
