"""Output names: every input file gets names of its own under the output folder, kept for good.

An input file's outputs are named after its path without the input extension: `a/part-0.jsonl.gz`
writes `OUT/a/part-0.parquet`, `OUT/excluded/a/part-0.parquet` and `OUT/logs/shards/a/part-0.json`.
That name is not always free, and a shared name would let one file's outputs overwrite another's:
- `part-0.jsonl` and `part-0.parquet` strip to the same name;
- a first folder named like the layout's own (`excluded/x.jsonl`, `logs/`, `prompts/`, `stats.json`)
  would write where other outputs go;
- `a.part1.parquet` would be taken for the second part of `a.parquet` (files roll over to parts);
- a file where another name needs a folder: `a.jsonl` writes `OUT/a.parquet`, which `a.parquet/b.jsonl`
  needs as a folder (Spark writes such folders);
- and names that differ only in case are one file on case-insensitive disks.
Such a file gets its full name instead (`part-0.parquet` writes `OUT/part-0.parquet.parquet`), an
underscore before a reserved first folder (`_excluded/x`), and if still taken, its full path with
`~2`, `~3`, ... after each folder and the name (`s.parquet~2/t.jsonl~2`).

Names are given in sorted order and recorded in OUT/logs/names.json; a recorded name never changes,
so files added to the input later never rename the outputs of shards already done.
"""

from __future__ import annotations

import re
from itertools import count

INPUT_EXTENSIONS = (".parquet", ".jsonl", ".jsonl.gz", ".jsonl.zst", ".json.gz")  # .json.gz: jsonl, as in C4
EXCLUDED_DIR = "excluded"
LOGS_DIR = "logs"
PROMPTS_DIR = "prompts"
RESERVED = frozenset({EXCLUDED_DIR, LOGS_DIR, PROMPTS_DIR, "stats.json"})  # the layout's own first names
_PART = re.compile(r"\.part\d+$")  # rolled-over parts: NAME.part1.parquet
_FILE_SUFFIXES = (".parquet", ".json")  # the output files a name makes: NAME.parquet, NAME.json


def shard_stem(shard: str) -> str:
    """A shard's path relative to the input folder, without the input extension."""
    for extension in INPUT_EXTENSIONS:
        if shard.endswith(extension):
            return shard[: -len(extension)]
    return shard


def renamed_note(shard: str, name: str) -> str:
    return f"{shard} is written as {name}.parquet, its plain name being taken or reserved"


def _folders(name: str) -> list[str]:
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _file_owner(folder: str) -> str | None:
    """The name whose output file would sit where `folder` is (`a.parquet` -> `a`), if any."""
    for suffix in _FILE_SUFFIXES:
        if folder.endswith(suffix):
            return _PART.sub("", folder[: -len(suffix)])
    return None


class NameBook:
    """The names given so far, and the next free name for a shard."""

    def __init__(self, names: dict[str, str] | None = None):
        self.names: dict[str, str] = {}
        self._taken: set[str] = set()  # casefolded names
        self._folder_owners: set[str] = set()  # casefolded names whose files other names need as folders
        for shard, name in (names or {}).items():
            self._record(shard, name)

    def name(self, shard: str) -> str:
        """The shard's name: the recorded one, or the first free candidate (then recorded)."""
        if shard not in self.names:
            self._record(shard, next(c for c in self._candidates(shard) if self._free(c)))
        return self.names[shard]

    def _record(self, shard: str, name: str) -> None:
        self.names[shard] = name
        self._taken.add(name.casefold())
        self._folder_owners.update(owner.casefold() for f in _folders(name) if (owner := _file_owner(f)))

    @staticmethod
    def _candidates(shard: str):
        def unreserved(name: str) -> str:
            return "_" + name if name.split("/", 1)[0].casefold() in RESERVED else name

        yield unreserved(shard_stem(shard))
        yield unreserved(shard)
        for number in count(2):  # on every folder too: a folder named like a file must change
            yield unreserved("/".join(f"{part}~{number}" for part in shard.split("/")))

    def _free(self, name: str) -> bool:
        folded = name.casefold()
        return (folded not in self._taken and folded not in self._folder_owners
                and not _PART.search(folded)
                and not any((owner := _file_owner(f)) and owner in self._taken for f in _folders(folded)))
