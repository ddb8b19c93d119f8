"""What a word and a finished line are, one definition for the document rules and the line rules.

Deliberately simple and deterministic: whitespace tokens with the punctuation at their edges
stripped (no tokenizer model, no downloads), so the published thresholds apply approximately.
"""

from __future__ import annotations

import string

_EDGE_PUNCTUATION = string.punctuation + "“”‘’«»‹›„‚…–—•·¡¿、。，．！？：；（）【】《》"
_CLOSERS = "\"'”’»)]"
_TERMINAL = (".", "!", "?", "。", "！", "？", "؟", "।")
_ELLIPSES = ("...", "…")


def words(text: str) -> list[str]:
    """Whitespace tokens without their edge punctuation; tokens made only of symbols are not words."""
    return [word for token in text.split() if (word := token.strip(_EDGE_PUNCTUATION))]


def ends_with_ellipsis(line: str) -> bool:
    return line.rstrip().endswith(_ELLIPSES)


def ends_with_terminal_punctuation(line: str) -> bool:
    """Ends like a sentence (closing quotes and brackets aside); an ellipsis is a cut, not an end."""
    stripped = line.rstrip().rstrip(_CLOSERS)
    return stripped.endswith(_TERMINAL) and not stripped.endswith(_ELLIPSES)
