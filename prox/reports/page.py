"""The report page: one self-contained HTML file (styles inline, plots as data; no request leaves it)."""

from __future__ import annotations

from collections import Counter

from jinja2 import Environment

from prox.reports import plots
from prox.reports.comparison import ACTIONS, Comparison
from prox.reports.highlight import marks_complete, shown_lines
from prox.reports.run_reader import RunFigures

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>prox report: {{ title }}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: .5em 0 1.5em; } td, th { padding: .2em .8em; border-bottom: 1px solid #ddd; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
#plots .grid { display: flex; flex-wrap: wrap; gap: 1em; } figure { margin: 0; } figcaption { font-weight: 600; }
figure img { width: 32em; max-width: 100%; }
.doc { border: 1px solid #ccc; border-radius: 4px; margin: 1em 0; padding: .5em 1em; }
.lines { font: 12px/1.4 ui-monospace, monospace; white-space: pre-wrap; max-height: 30em; overflow: auto; }
.removed { background: #fdd; text-decoration: line-through; color: #933; }
del.normalized { background: #fdd; color: #933; } ins.normalized { background: #dfd; text-decoration: none; }
table.side td { vertical-align: top; width: 50%; }
.program { font: 12px ui-monospace, monospace; background: #f6f6f6; white-space: pre-wrap; padding: .4em; }
</style></head>
<body>
<h1>prox report: {{ title }}</h1>
<section id="summary"><h2>Summary</h2>
<table>
{% for name, value in summary %}<tr><th>{{ name }}</th><td class="n" data-key="{{ name }}">{{ value }}</td></tr>
{% endfor %}</table>
<table><tr><th>dropped, by reason</th><th>documents</th></tr>
{% for reason, count in stats.dropped_by_reason.items() %}<tr><td>{{ reason }}</td>
<td class="n" data-reason="{{ reason }}">{{ count }}</td></tr>{% endfor %}</table>
<table><tr><th>setting</th><th>value</th></tr>
{% for name, value in settings %}<tr><td>{{ name }}</td><td>{{ value }}</td></tr>{% endfor %}</table>
</section>
<section id="plots"><h2>Plots</h2><div class="grid">
{% for caption, image in images %}<figure><figcaption>{{ caption }}</figcaption>
<img alt="{{ caption }}" src="{{ image }}"></figure>{% endfor %}</div>
{% if not failures %}<p>No program had a diagnostic.</p>{% endif %}
</section>
<section id="removed-lines"><h2>Lines removed most often</h2>
<p>Among the {{ sampled_with_text }} modified documents of a fixed-seed sample whose text before refining
the run kept (prox refine --keep-raw keeps it).</p>
<table><tr><th>line</th><th>removed</th></tr>
{% for line, count in top_lines %}<tr><td>{{ line }}</td><td class="n">{{ count }}</td></tr>{% endfor %}</table>
</section>
{% if comparison %}<section id="comparison"><h2>Compared with {{ other }}</h2>
<p>{{ comparison.common }} documents in both runs ({{ comparison.only[0] }} only in this one, {{ comparison.only[1] }}
only in the other). Words kept: <span data-words="this">{{ comparison.words[0] }}</span> here,
<span data-words="other">{{ comparison.words[1] }}</span> there.</p>
<table><tr><th>this run / other run</th>{% for b in actions %}<th>{{ b }}</th>{% endfor %}</tr>
{% for a in actions %}<tr><th>{{ a }}</th>{% for b in actions %}
<td class="n" data-agreement="{{ a }}-{{ b }}">{{ comparison.agreement[a][b] }}</td>{% endfor %}</tr>{% endfor %}
</table>
<h3>Where they differ most</h3>
{% for left, right, gap in differing %}<div class="pair" data-id="{{ left.id }}"><h4>{{ left.id }}: {{ gap|abs }}
words more kept {{ "here" if gap > 0 else "there" }}</h4><table class="side"><tr>
<th>this run: {{ left.action }} ({{ left.reason }})</th><th>other run: {{ right.action }} ({{ right.reason }})</th>
</tr><tr><td><div class="lines">{{ left.after }}</div></td>
<td><div class="lines">{{ right.after }}</div></td></tr></table></div>{% endfor %}
</section>{% endif %}
<section id="sample"><h2>Sample of {{ documents|length }} documents</h2>
{% for d in documents %}<div class="doc" id="doc-{{ loop.index }}" data-id="{{ d.id }}">
<h3>{{ d.id }}: {{ d.action }} ({{ d.reason }})</h3>
<div class="program">doc program: {{ d.doc_program }}
chunk program: {{ d.chunk_program }}
applied: {{ d.applied }}</div>
{% if not d.complete %}<p>The marks do not show every change here (a normalization across lines, or of
another's result): the text after is below the marked lines.</p>{% endif %}
{% if d.lines %}<div class="lines">{% for line in d.lines %}<div{% if line.removed %} class="removed"{% endif %}
 data-line="{{ line.number }}">{{ line.html|safe }}</div>{% endfor %}</div>
{% else %}<p>The run did not keep this document's text before refining (refine --keep-raw does). After:</p>
<div class="lines">{{ d.after }}</div>{% endif %}
{% if d.lines and not d.complete %}<div class="lines">{{ d.after }}</div>{% endif %}
</div>{% endfor %}
</section>
</body></html>
"""


def sampled_document(document: dict) -> dict:
    """What the page shows of one sampled document: its lines before, marked, when the run kept them."""
    metadata = document.get("metadata") or {}
    action = metadata.get("prox_action", "?")
    before = metadata.get("raw_content") or (document["text"] if action != "modified" else None)
    lines = shown_lines(before, metadata if action == "modified" else {}) if before is not None else None
    return {"id": document.get("id"), "action": action, "reason": metadata.get("prox_reason", "?"),
            "doc_program": metadata.get("doc_program"), "chunk_program": metadata.get("chunk_program"),
            "applied": "; ".join(metadata.get("prox_operations") or []) or "nothing", "lines": lines,
            "after": document["text"], "modified": action == "modified",
            "complete": action != "modified" or lines is None or marks_complete(lines, document["text"])}


def removed_line_counts(documents: list[dict]) -> tuple[Counter, int]:
    """How often each removed line (stripped) occurs among the modified `documents` whose text before
    the run kept, and how many those were."""
    counts, readable = Counter(), 0
    for document in documents:
        if document["lines"] is None or not document["modified"]:
            continue
        readable += 1
        counts.update(line.text.strip() for line in document["lines"] if line.removed and line.text.strip())
    return counts, readable


def render(title: str, stats: dict, figures: RunFigures, sample: list[dict], lines_sample: list[dict],
           top: int = 30, comparison: Comparison | None = None, other: str = "") -> str:
    """The page: `sample` shown before and after, `lines_sample` (larger) counted for the lines removed
    most often; `comparison` (with the other run's name, `other`) adds the comparison section."""
    documents = [sampled_document(d) for d in sample]
    counts, readable = removed_line_counts([sampled_document(d) for d in lines_sample])
    shards = stats.get("shards", {})
    summary = [("input", stats["input"]), ("kept", stats["kept"]), ("modified", stats["modified"]),
               ("dropped", stats["dropped"]), ("words_before", stats["words_before"]),
               ("words_after", stats["words_after"]), ("shards_done", shards.get("done", 0)),
               ("shards_total", shards.get("total", 0))]
    settings = stats.get("settings", {})
    images = [("Share of words removed per document", plots.removed_share_plot(figures.removed_shares)),
              ("Drop reasons", plots.bar_plot(stats["dropped_by_reason"], "documents dropped")),
              ("Program length", plots.program_length_plot(figures.operations))]
    if figures.failures:
        images.append(("Failures by category and stage", plots.failures_plot(figures.failures)))
    histogram = stats.get("doc_drop_probabilities", {})
    if histogram.get("judged"):
        images.append(("Doc drop probabilities", plots.bar_plot(histogram["histogram"], "documents judged")))
    environment = Environment(autoescape=True)
    return environment.from_string(TEMPLATE).render(
        title=title, stats=stats, summary=summary, images=images,
        settings=[(k, settings[k]) for k in ("command", "domain", "stages", "models", "engine", "policy")
                  if k in settings],
        documents=documents, top_lines=counts.most_common(top), sampled_with_text=readable,
        comparison=comparison, other=other, actions=ACTIONS, failures=bool(figures.failures),
        differing=[(sampled_document(a), sampled_document(b), gap)
                   for a, b, gap in (comparison.differing if comparison else [])])
