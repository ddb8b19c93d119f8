"""`prox report`: one HTML page of what a run did, from its outputs and statistics."""

from __future__ import annotations

import click
from datatrove.io import get_datafolder

from prox.reports.comparison import compare
from prox.reports.page import render
from prox.reports.run_reader import read_stats, run_figures, sample_documents

LINES_ROW_GROUPS = 16  # the lines sample is drawn from at most this many row groups, so reading it stays bounded


@click.command()
@click.argument("output")
@click.option("-o", "--html", "html_path", default=None, help="Where to write the page [default: OUTPUT/report.html].")
@click.option("--sample", type=click.IntRange(min=0), default=20, show_default=True,
              help="Documents shown before and after (chosen with --seed).")
@click.option("--lines-sample", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Documents sampled (with --seed, from at most 16 row groups) to count the lines removed most often.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--compare", "other", default=None,
              help="Another run's OUTPUT over the same input: how their decisions agree, and where they differ most.")
def report(output: str, html_path: str | None, sample: int, lines_sample: int, seed: int, other: str | None) -> None:
    """Write one self-contained HTML page about the run in OUTPUT (local, s3:// or hf://): the summary,
    plots, the lines removed most often, and a sample of documents before and after with what their
    programs did marked in place; with --compare, the two runs side by side. It reads the statistics,
    a few metadata columns and the sample, never the whole corpus."""
    try:
        stats = read_stats(output)
        if other is not None:
            read_stats(other)
    except FileNotFoundError as error:
        raise click.ClickException(str(error)) from error
    comparison = compare(output, other) if other is not None else None
    page = render(output, stats, run_figures(output), sample_documents(output, sample, seed),
                  sample_documents(output, lines_sample, seed, row_groups=LINES_ROW_GROUPS), comparison=comparison,
                  other=other or "")
    if html_path is None:
        with get_datafolder(output).open("report.html", "w", encoding="utf-8") as file:
            file.write(page)
        html_path = get_datafolder(output).resolve_paths("report.html")
    else:
        with open(html_path, "w", encoding="utf-8") as file:
            file.write(page)
    click.echo(f"report: {html_path}")
