"""The report's plots, drawn with matplotlib and embedded as PNG data (the page needs no network)."""

from __future__ import annotations

import base64
import io
from collections import Counter

PLOT_SIZE = (6.4, 3.2)


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=PLOT_SIZE, layout="constrained")
    return figure, axes


def _png(figure) -> str:
    from matplotlib import pyplot

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    pyplot.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def removed_share_plot(shares: Counter) -> str:
    """`shares`: documents by 5% of their words removed (0 to 19; 20: dropped)."""
    figure, axes = _figure()
    axes.bar([5 * b + 2.5 for b in range(21)], [shares.get(b, 0) for b in range(21)], width=5, color="#4c72b0")
    axes.set(xlabel="words removed from the document (%; dropped documents at 100)", ylabel="documents")
    return _png(figure)


def bar_plot(counts: dict[str, int], xlabel: str) -> str:
    figure, axes = _figure()
    names = list(counts) or ["(none)"]
    axes.barh(names, [counts.get(n, 0) for n in names], color="#55a868")
    axes.invert_yaxis()
    axes.set(xlabel=xlabel)
    return _png(figure)


def program_length_plot(operations: Counter) -> str:
    """`operations`: documents by the number of operations applied."""
    figure, axes = _figure()
    sizes = range(max(operations, default=0) + 1)
    axes.bar(list(sizes), [operations.get(n, 0) for n in sizes], width=1, color="#c44e52")
    axes.set(xlabel="operations applied per document", ylabel="documents")
    return _png(figure)


def failures_plot(failures: Counter) -> str:
    labels = {f"{stage}: {category}": count for (stage, category), count in sorted(failures.items())}
    return bar_plot(labels, "diagnostics (by stage and category)")
