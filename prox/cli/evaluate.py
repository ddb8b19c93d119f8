"""`prox eval`: how well a refiner agrees with an annotated set (prox annotate)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from prox.cli.engine_options import EngineOptions, engine_options
from prox.engines import EngineError, ModelNotFoundError
from prox.engines.models import check_model
from prox.evaluation.metrics import ChunkScore, DocScore
from prox.evaluation.programs import model_programs, run_programs
from prox.prompts import load_prompts
from prox.training.examples import split_rows


@click.command("eval")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False),
              help="The annotated set (the output of prox annotate).")
@click.option("--model", default=None, help="A refiner to ask now (a folder, e.g. prox train's output, or a hub "
              "name), through --engine.")
@click.option("--programs", "run_output", default=None, type=click.Path(exists=True, file_okay=False),
              help="Instead of --model: score the programs of a finished prox refine run (its OUTPUT).")
@click.option("--stage", type=click.Choice(["doc", "chunk"]), default=None,
              help="Which stage [default: the model's (prox train records it), else both the data has].")
@click.option("--split", type=click.Choice(["validation", "train"]), default="validation", show_default=True)
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=None,
              help="Cap on generated tokens [default: refine's: 2000 doc, 256 chunk].")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@engine_options
def evaluate(data: str, model: str | None, run_output: str | None, stage: str | None, split: str,
             max_new_tokens: int | None, as_json: bool, engine: EngineOptions) -> None:
    """Score a refiner against DATA's annotations: doc-level keep/drop precision, recall and F1,
    chunk-level F1 of removed lines, kept ratios and the programs' failures by category, beside the
    paper's figures for the published 0.3B refiners."""
    if (model is None) == (run_output is None):
        raise click.UsageError("give --model DIR (ask a refiner now) or --programs OUT (score a finished run)")
    if model is not None and engine.resolved_kind == "rules":
        raise click.UsageError("the rules engine reads text the set does not store: refine with --engine rules, "
                               "then prox eval --programs OUT")
    stages = [stage] if stage else _stages(data, model)
    spec = load_prompts()
    report = {}
    try:
        stored = run_programs(run_output) if run_output else None
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    for name in stages:
        rows = split_rows(data, name, split)
        if not rows:
            raise click.ClickException(f"{data} has no {name}/{split}/*.parquet rows (is it prox annotate's output?)")
        missing = 0
        if stored is not None:  # rows the run wrote no program for (a document the doc stage dropped) are left out
            programs = [stored.get(row["id"], {}).get(name) for row in rows]
            missing = sum(program is None for program in programs)
            rows, programs = [r for r, p in zip(rows, programs, strict=True) if p is not None], [
                p for p in programs if p is not None]
            if not rows:
                raise click.ClickException(f"none of the {missing} {name}-level examples of {data} ({split}) has a "
                                           f"{name} program in {run_output}: was it refined from the same documents?")
        else:
            limit = max_new_tokens or (spec.doc.max_new_tokens if name == "doc" else spec.chunk.max_new_tokens)
            try:
                specs = engine.specs((name,), {name: model}, {name: model})
                if specs[name].kind in ("transformers", "vllm"):
                    check_model(model)
                programs = model_programs(rows, specs[name], limit)
            except (ModelNotFoundError, EngineError) as error:
                raise click.ClickException(str(error)) from error
        report[name] = _score(name, rows, programs, whole_documents=stored is not None)
        if stored is not None:
            report[name]["without_program"] = missing
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print(report, split)


def _stages(data: str, model: str | None) -> list[str]:
    """The stage prox train recorded for `model`; for a run's programs, every stage `data` has."""
    if model is not None:
        recorded = Path(model) / "prox-train.json"
        if not recorded.is_file():
            raise click.UsageError(f"{model} does not say which stage it refines (no prox-train.json): give --stage")
        return [json.loads(recorded.read_text())["settings"]["stage"]]
    stages = [s for s in ("doc", "chunk") if any((Path(data) / s).glob("*/*.parquet"))]
    if not stages:
        raise click.ClickException(f"{data} holds no annotations (doc/ or chunk/ parquet files of prox annotate)")
    return stages


def _score(stage: str, rows: list[dict], programs: list[str | None], whole_documents: bool = False) -> dict:
    """`whole_documents`: each program is its document's, as a run stores it, not its chunk's."""
    if stage == "doc":
        doc = DocScore()
        for row, program in zip(rows, programs, strict=True):
            doc.add(row["label"], program)
        return doc.report()
    chunk = ChunkScore()
    counted: set[str] = set()  # a run's program serves all chunks of its document: its failures count once
    for row, program in zip(rows, programs, strict=True):
        chunk.add(set(row["removed_lines"]), program, range(row["first_line"], row["last_line"] + 1),
                  count_failures=not whole_documents or row["id"] not in counted)
        counted.add(row["id"])
    return chunk.report()


def _print(report: dict, split: str) -> None:
    for stage, figures in report.items():
        click.echo(f"{stage} level, {split} split: {figures['examples']:,} examples"
                   + (f", {figures['lines']:,} lines" if stage == "chunk" else "")
                   + (f" ({figures['without_program']:,} more without a program in the run)"
                      if figures.get("without_program") else ""))
        click.echo(f"  {'':<30}{'this refiner':>14}{'paper (0.3B)':>14}")
        label = "F1 (mean of keep, drop)" if stage == "doc" else "F1 of removed lines"
        click.echo(f"  {label:<30}{figures['f1']:>14.1f}{figures['paper_f1']:>14.1f}")
        if stage == "doc":
            for kind in ("keep", "drop"):
                p, r, f = (figures[kind][k] for k in ("precision", "recall", "f1"))
                click.echo(f"  {kind + ' precision / recall / F1':<30}{p:>8.1f} / {r:.1f} / {f:.1f}")
            click.echo(f"  {'accuracy':<30}{figures['accuracy']:>14.1f}")
        else:
            click.echo(f"  {'precision / recall':<30}{figures['precision']:>8.1f} / {figures['recall']:.1f}")
        click.echo(f"  {'kept ratio (annotation)':<30}{figures['kept_ratio']:>14.1f}"
                   f" ({figures['labelled_keep_ratio' if stage == 'doc' else 'labelled_kept_ratio']:.1f})")
        failures = ", ".join(f"{k} {v}" for k, v in figures["failures"].items()) or "none"
        click.echo(f"  {'failures by category':<30}  {failures}")
