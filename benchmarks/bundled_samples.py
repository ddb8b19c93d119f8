"""The bundled documents the benchmarks read: their texts, in file order."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

SAMPLES = Path(__file__).parents[1] / "samples"


def dclm_texts() -> list[str]:
    """The 281 labelled DCLM pages (samples/dclm-labeled-281.jsonl.gz)."""
    return [json.loads(line)["text"] for line in gzip.open(SAMPLES / "dclm-labeled-281.jsonl.gz", "rt")]


def web_texts() -> list[str]:
    """The bundled web documents (samples/web-documents.jsonl)."""
    return [json.loads(line)["text"] for line in (SAMPLES / "web-documents.jsonl").open()]
