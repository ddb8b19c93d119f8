"""One run per output folder, and no silent change of settings within one.

Cron starts runs on a timer; when one takes longer than the period, the next must leave the folder
alone. The lock is an advisory `flock` on OUT/logs/run.lock: the kernel drops it when its holder
dies, so a run killed with SIGKILL never leaves a lock that blocks the next one. The file also says
who holds it, for the message.

A folder's documents must all come from the same settings; a rerun that would mix in others
(another model, threshold or stage) is refused, naming the differences, unless the user asks to
start over.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
import time
from collections.abc import Iterator

import orjson

from prox.pipeline.input_files import is_local
from prox.pipeline.shards import EXCLUDED_DIR, LOGS_DIR, PROMPTS_DIR, OutputLayout

LOCK_NAME = f"{LOGS_DIR}/run.lock"
# Settings that change how fast a run goes, not what it writes.
RUN_ONLY_SETTINGS = {"limit", "batch_size", "engine.batch_tokens", "engine.gpus", "engine.gpu_memory_utilization",
                     "engine.tensor_parallel_size", "engine.concurrency", "engine.request_timeout", "engine.retries",
                     "engine.device", "engine.endpoint", "engine.chunk_endpoint", "engine.enforce_eager"}


class OutputBusyError(Exception):
    """Another run holds the output folder."""


class SettingsChangedError(Exception):
    """The output holds work done with other settings."""


@contextlib.contextmanager
def output_lock(layout: OutputLayout, output_path: str) -> Iterator[None]:
    """Holds the output's run lock for the duration; raises OutputBusyError at once if it is held.
    Remote outputs (s3://, hf://) have no lock: run one job per remote folder."""
    if not is_local(layout.folder):
        yield
        return
    path = layout.folder.resolve_paths(LOCK_NAME)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputBusyError(f"another prox run is using {output_path} ({_holder(path)}); it holds "
                                  f"{path} until it ends. Wait for it, or use another output folder.") from None
        os.ftruncate(descriptor, 0)
        os.write(descriptor, orjson.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                           "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                                           "command": " ".join(sys.argv[1:])[:500]}))
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _holder(path: str) -> str:
    try:
        with open(path, "rb") as file:
            holder = orjson.loads(file.read())
        return f"pid {holder['pid']} on {holder['host']}, started {holder['started']}: prox {holder['command']}"
    except (OSError, ValueError, KeyError):
        return "holder unknown"


def flatten(settings: dict, prefix: str = "") -> dict:
    """{"policy": {"threshold_2": 0.95}} -> {"policy.threshold_2": 0.95}."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def setting_differences(before: dict, now: dict) -> list[str]:
    """The settings that change what a run writes, as "name: before -> now"."""
    missing = "(not set)"  # None is not set too: a setting added later, left off, changes nothing
    old, new = ({k: v for k, v in flatten(s).items() if v is not None} for s in (before, now))
    names = sorted((set(old) | set(new)) - RUN_ONLY_SETTINGS)
    return [f"{name}: {old.get(name, missing)} -> {new.get(name, missing)}"
            for name in names if old.get(name, missing) != new.get(name, missing)]


def check_settings(layout: OutputLayout, name: str, settings: dict, output_path: str) -> None:
    """Raises SettingsChangedError when OUT holds settings that differ from `settings`."""
    if not layout.folder.isfile(name):
        return
    if differences := setting_differences(layout.read_json(name), settings):
        listed = "\n  ".join(differences)
        raise SettingsChangedError(f"{output_path} was written with other settings:\n  {listed}\n"
                                   "Use the same settings to resume, another output folder, or --overwrite "
                                   "to delete its results and start over.")


def clear_output(layout: OutputLayout) -> None:
    """Deletes what runs of the layout's job wrote (not the lock, not other files the user keeps there)."""
    fs, folder = layout.folder.fs, layout.folder
    names = [f"{LOGS_DIR}/{kind}{layout.summaries}" for kind in ("", "failed-", "limited-")]
    names.append(layout.job_file("settings.json"))
    if layout.job == "documents":
        names += [*layout.document_files(), "stats.json", EXCLUDED_DIR, f"{LOGS_DIR}/partial", f"{LOGS_DIR}/datatrove"]
    else:
        names += [PROMPTS_DIR, f"{LOGS_DIR}/partial/{PROMPTS_DIR}"]
    for name in names:
        if folder.exists(name):
            fs.rm(folder.resolve_paths(name), recursive=True)
