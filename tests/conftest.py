"""Shared helpers: the bundled real documents and running the real CLI in a subprocess."""

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).parents[1]
SAMPLES = ROOT / "samples" / "cc-programs.jsonl"


def sample_rows() -> list[dict]:
    return [json.loads(line) for line in SAMPLES.read_text().splitlines()]


def run_prox(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Runs `python -m prox ARGS` as a user would; fails the test with its output if it fails."""
    result = subprocess.run([sys.executable, "-m", "prox", *args], capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        pytest.fail(f"prox {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr[-3000:]}")
    return result


def read_output(out: Path) -> tuple[list[dict], list[dict]]:
    """(kept and modified rows, dropped rows) of a prox output folder."""
    def rows(paths):
        return [row for path in sorted(paths) for row in pq.read_table(path).to_pylist()]
    kept = rows(p for p in out.rglob("*.parquet") if p.relative_to(out).parts[0] not in ("excluded", "logs"))
    return kept, rows((out / "excluded").rglob("*.parquet"))
