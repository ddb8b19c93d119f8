"""The input files of a run: one file, or every input file under a folder, symlinks followed.

A local folder is walked following symlinked folders too (fsspec's listing skips them), each real
folder once: a symlink back to a folder above it (a loop), or to a folder already listed, is not
walked again, and a file reached twice (a symlink or a hard link to it) is read once, by its path
without symlinks if it has one, else by the first in walk order. Each of these is reported in
`notes`, never skipped in silence. A dangling symlink named like an input file is listed, so that
reading it fails and names it; any other (a folder of shards on a disk not mounted?) is a note. A
symlink named like an input file is read whatever its target is called (a Hugging Face cache's
snapshots/ point into blobs/). Remote folders (s3://, hf://) have no symlinks and are listed as
they are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from datatrove.io import DataFolder, get_datafolder

from prox.pipeline.output_names import INPUT_EXTENSIONS
from prox.pipeline.shards import LOGS_DIR, PROMPTS_DIR


@dataclass
class InputFiles:
    folder: DataFolder
    files: list[str]  # relative to `folder`, sorted
    notes: list[str] = field(default_factory=list)  # paths listed once or not followed, and why


def is_local(folder: DataFolder) -> bool:
    protocols = folder.fs.protocol  # a name or a tuple of names, in fsspec
    return "file" in (protocols if isinstance(protocols, tuple) else (protocols,))


def input_folder(path: str) -> DataFolder:
    """The folder that input files are named relative to: `path`, or the folder of a single file."""
    return get_datafolder(os.path.dirname(os.path.abspath(path)) if os.path.isfile(path) else path)


def list_input(path: str) -> InputFiles:
    """The input files of `path` (a file or a folder); raises FileNotFoundError if there is none."""
    folder = input_folder(path)
    if os.path.isfile(path):
        return InputFiles(folder, [os.path.basename(path)])
    if not folder.isdir(""):
        raise FileNotFoundError(f"input {path} does not exist")
    # a prox output read as input (prox apply): its logs and prompts are not documents
    skipped = {LOGS_DIR, PROMPTS_DIR} if folder.isfile("stats.json") or folder.isfile(f"{LOGS_DIR}/settings.json") \
        else set()
    if is_local(folder):
        return InputFiles(folder, *_walk(folder.resolve_paths(""), skipped))
    files = sorted(f for f in folder.list_files(recursive=True) if f.endswith(INPUT_EXTENSIONS))
    return InputFiles(folder, [f for f in files if f.split("/", 1)[0] not in skipped])


def dangling_target(folder: DataFolder, name: str) -> str | None:
    """Where `name` points, when it is a symlink to nothing."""
    path = folder.resolve_paths(name)
    if is_local(folder) and os.path.islink(path) and not os.path.exists(path):
        return os.readlink(path)
    return None


def _identity(path: str) -> tuple[int, int] | None:
    try:
        status = os.stat(path)  # follows symlinks
    except OSError:  # a dangling symlink
        return None
    return status.st_dev, status.st_ino


def _raise(error: OSError) -> None:
    raise error  # os.walk ignores unreadable folders by default: that would be a silent skip


def _prefix(root: str, path: str) -> str:
    relative = os.path.relpath(path, root)
    return "" if relative == "." else relative.replace(os.sep, "/") + "/"


def _walk(root: str, skipped: set[str]) -> tuple[list[str], list[str]]:
    def subfolders_to_walk(path: str, subfolders: list[str]) -> None:
        subfolders[:] = sorted(n for n in subfolders if path != root or n not in skipped)

    # the input's own folders and files first, so a path without symlinks wins over one through a symlink
    first: dict[tuple[int, int] | None, str] = {}
    for path, subfolders, names in os.walk(root, onerror=_raise):
        subfolders_to_walk(path, subfolders)
        for name in [*subfolders, *sorted(n for n in names if n.endswith(INPUT_EXTENSIONS))]:
            if not os.path.islink(full := os.path.join(path, name)):
                first.setdefault(_identity(full), _prefix(root, path) + name)
    first[_identity(root)] = ""
    first.pop(None, None)
    files, notes = [], []
    for path, subfolders, names in os.walk(root, followlinks=True, onerror=_raise):
        prefix = _prefix(root, path)
        subfolders_to_walk(path, subfolders)
        for name in list(subfolders):
            here = prefix + name
            owner = first.setdefault(_identity(os.path.join(path, name)), here)
            if owner != here:
                subfolders.remove(name)
                loop = owner == "" or here.startswith(owner + "/")
                notes.append(f"{here}/ not followed: it is {f'{owner}/' if owner else 'the input folder'} again"
                             + (" (a symlink loop)" if loop else ", listed there"))
        for name in sorted(names):
            here, identity = prefix + name, _identity(os.path.join(path, name))
            if not name.endswith(INPUT_EXTENSIONS):
                if identity is None:  # perhaps a folder of shards on a disk not mounted
                    notes.append(f"{here} not read: a symlink to {os.readlink(os.path.join(path, name))}, "
                                 "which does not exist")
                continue
            owner = here if identity is None else first.setdefault(identity, here)  # None: a dangling symlink
            if owner == here:
                files.append(here)
            else:
                notes.append(f"{here} read once, as {owner}: they are the same file")
    return sorted(files), notes
