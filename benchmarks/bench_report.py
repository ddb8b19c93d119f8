"""What every benchmark reports alongside its figures: the machine, and the JSON in bench-out/."""

from __future__ import annotations

import json
import os
import platform
import re
from pathlib import Path

OUT = Path(__file__).parents[1] / "bench-out"


def machine() -> str:
    processor = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    models = re.findall(r"model name\s*: (.*)", cpuinfo.read_text()) if cpuinfo.exists() else []
    if models:
        processor = f"{models[0]} ({processor})"
    return f"{processor}, {os.cpu_count()} cores, Python {platform.python_version()} ({platform.system()})"


def save(name: str, figures: dict) -> None:
    """Writes bench-out/NAME.json with the machine added."""
    OUT.mkdir(exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps({"machine": machine(), **figures}, indent=2))
