"""The `prox` command: one subcommand per user task."""

from __future__ import annotations

import click

from prox import __version__
from prox.cli.annotate import annotate
from prox.cli.apply import apply
from prox.cli.evaluate import evaluate
from prox.cli.refine import refine
from prox.cli.report import report
from prox.cli.serve import serve
from prox.cli.stats import stats
from prox.cli.train import train
from prox.cli.verify import verify


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="prox")
def main() -> None:
    """Refine pre-training corpora the ProX way: a refining model writes a small program for each
    document (drop_doc, remove_lines, normalize, ...), and a sandboxed interpreter runs it."""


main.add_command(refine)
main.add_command(apply)
main.add_command(stats)
main.add_command(verify)
main.add_command(serve)
main.add_command(annotate)
main.add_command(train)
main.add_command(evaluate)
main.add_command(report)
