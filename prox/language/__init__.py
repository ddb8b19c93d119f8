"""The program language: its spec (programs/language.yaml), typed operations, and the parser."""

from prox.language.operations import (
    Category,
    Diagnostic,
    DropDoc,
    KeepChunk,
    KeepDoc,
    Normalize,
    Operation,
    Program,
    RemoveAllLines,
    RemoveLines,
)
from prox.language.parser import parse_program
from prox.language.spec import Language, load_language

__all__ = [
    "Category", "Diagnostic", "DropDoc", "KeepChunk", "KeepDoc", "Language", "Normalize", "Operation",
    "Program", "RemoveAllLines", "RemoveLines", "load_language", "parse_program",
]
