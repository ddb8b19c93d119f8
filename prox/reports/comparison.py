"""Two refinements of the same input side by side: how their decisions agree, the words each kept,
and the documents where they differ most."""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass

from prox.reports.run_reader import document_outcomes, documents_by_id

ACTIONS = ("kept", "modified", "dropped")


@dataclass
class Comparison:
    agreement: dict[str, dict[str, int]]  # action in the first run -> action in the second -> documents
    words: tuple[int, int]  # words kept by each run, over the documents both hold
    common: int  # documents in both runs
    only: tuple[int, int]  # documents in one run only
    differing: list[tuple[dict, dict, int]]  # (first's document, second's, difference in words kept)


def compare(first: str, second: str, count: int = 5) -> Comparison:
    one, two = document_outcomes(first), document_outcomes(second)
    common = one.keys() & two.keys()
    pairs = Counter((one[i][0], two[i][0]) for i in common)
    agreement = {a: {b: pairs.get((a, b), 0) for b in ACTIONS} for a in ACTIONS}
    gaps = heapq.nsmallest(count, common, key=lambda i: (-abs(one[i][1] - two[i][1]), i))
    gaps = [i for i in gaps if one[i] != two[i]]
    left, right = documents_by_id(first, set(gaps)), documents_by_id(second, set(gaps))
    return Comparison(agreement, (sum(one[i][1] for i in common), sum(two[i][1] for i in common)), len(common),
                      (len(one.keys() - common), len(two.keys() - common)),
                      [(left[i], right[i], one[i][1] - two[i][1]) for i in gaps])
