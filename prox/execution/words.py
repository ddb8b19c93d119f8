"""Counting words as the reference does, len(text.split()), without making a string per word.

Counting is a large share of executing a program (the decision compares words before and after), and
str.split() spends most of its time making and freeing one string per word. Here the text's UTF-16 code
units are looked up in a table of what str.isspace() says about each, and a word starts wherever
whitespace (or the text's start) is followed by anything else. Every whitespace character lies in the
Basic Multilingual Plane, so the halves of a surrogate pair, like lone surrogates, count as word characters.
"""

from __future__ import annotations

from codecs import utf_16_le_encode  # the codec itself: no lookup, nothing imported on first use
from functools import cache

import numpy as np

_SHORT = 256  # characters: below this, str.split() is faster than setting up the arrays


@cache
def _whitespace() -> np.ndarray:
    table = np.zeros(0x10000, dtype=bool)
    table[[code for code in range(0x10000) if chr(code).isspace()]] = True
    return table


def count_words(text: str) -> int:
    """len(text.split()), two to three times faster on a web page."""
    if len(text) < _SHORT:
        return len(text.split())
    units = np.frombuffer(utf_16_le_encode(" " + text, "surrogatepass")[0], dtype=np.uint16)
    spaces = _whitespace().take(units)
    return int(np.count_nonzero(spaces[:-1] > spaces[1:]))
