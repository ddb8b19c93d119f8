"""`prox annotate`: a teacher model labels documents and cleans chunks; prox keeps what passes its
checks as a fine-tuning set for a refiner of your own."""

from __future__ import annotations

import click
from datatrove.io import get_datafolder

from prox.annotation.teacher_prompts import check_prompts
from prox.annotation.teachers import TeacherSpec
from prox.cli.jobs import run_job
from prox.cli.options import config_option, option_group, run_options
from prox.engines import BUNDLED_TOKENIZER, load_tokenizer
from prox.pipeline import ShardReader, ShardStats, ShardWriter
from prox.pipeline.annotate_documents import METHODS, AnnotateDocuments, AnnotationSettings

_DEFAULT = AnnotationSettings()
_DEFAULT_TEACHER = TeacherSpec("chat")

_TEACHER_OPTIONS = [
    click.option("--teacher", type=click.Choice(["chat", "rules"]), default="chat", show_default=True,
                 help="chat: an instruct model on an OpenAI-compatible server (--teacher-endpoint, --teacher-model); "
                 "rules: prox's heuristic filters and line rules (offline; a baseline and for tests)."),
    click.option("--teacher-endpoint", "endpoint", default="", help="Base URL of the teacher's server, e.g. "
                 "http://gpu-box:8000 (several, comma-separated, share the requests). Its key: PROX_API_KEY or "
                 "OPENAI_API_KEY in the environment."),
    click.option("--teacher-model", "model", default="",
                 help="The teacher's name on its server, e.g. meta-llama/Llama-3.1-70B-Instruct."),
    click.option("--teacher-concurrency", "concurrency", type=click.IntRange(min=1),
                 default=_DEFAULT_TEACHER.concurrency, show_default=True, help="Teacher requests in flight."),
    click.option("--teacher-timeout", "timeout", type=click.FloatRange(min=0.1), default=_DEFAULT_TEACHER.timeout,
                 show_default=True, help="Seconds before a teacher request is abandoned and retried."),
    click.option("--teacher-retries", "retries", type=click.IntRange(min=0), default=_DEFAULT_TEACHER.retries,
                 show_default=True, help="Retries of a teacher request after a connection error, timeout or 5xx; "
                 "then the task fails and a rerun resumes it."),
]
_ANNOTATION_OPTIONS = [
    click.option("--stage", type=click.Choice(["doc", "chunk", "all"]), default=_DEFAULT.stage, show_default=True,
                 help="Which stages to annotate."),
    click.option("--method", type=click.Choice(METHODS), default=_DEFAULT.method, show_default=True,
                 help="Chunk level. programs: the teacher writes a program per kind of noise "
                 "(programs/teacher/chunk_*.yaml), merged; rewrite: the teacher returns the cleaned chunk and prox "
                 "keeps only its deletions, as a program."),
    click.option("--teacher-language", "language", default=_DEFAULT.language, show_default=True,
                 help="Ask the teacher with the prompts of programs/teacher/ written in this language (their "
                 "`language:`)."),
    click.option("--keep-educational", type=click.IntRange(0, 5), default=_DEFAULT.keep_educational,
                 show_default=True, help="Label keep_doc() when the educational score is at least this ..."),
    click.option("--keep-educational-with-format", type=click.IntRange(0, 5),
                 default=_DEFAULT.keep_educational_with_format, show_default=True,
                 help="... or at least this with a format score of at least --keep-format."),
    click.option("--keep-format", type=click.IntRange(0, 5), default=_DEFAULT.keep_format, show_default=True,
                 help="See --keep-educational-with-format."),
    click.option("--max-removal", type=click.FloatRange(0, 1), default=_DEFAULT.max_removal, show_default=True,
                 help="Refuse a chunk program that removes more than this share of the chunk's words."),
    click.option("--validation-share", type=click.FloatRange(0, 1), default=_DEFAULT.validation_share,
                 show_default=True,
                 help="Share of documents held out as the validation split (chosen by id: stable across reruns)."),
]


@click.command()
@config_option
@run_options
@option_group(_TEACHER_OPTIONS, TeacherSpec, "teacher")
@option_group(_ANNOTATION_OPTIONS, AnnotationSettings, "annotation")
@click.option("--tokenizer", default=BUNDLED_TOKENIZER, show_default="the published refiners' (bundled)",
              help="Tokenizer of the refiner you will train: prompts are built with it, exactly as prox refine "
              "builds them for that model.")
@click.option("--domain", type=click.Choice(["web", "math"]), default="web", show_default=True,
              help="Which refine prompt pieces the examples use (programs/prompts/DOMAIN.yaml).")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True,
              help="Documents per batch of teacher requests.")
@click.option("--limit", type=int, default=-1, help="Read at most this many documents per task (a preview).")
@click.option("--truncate-document", is_flag=True, help="Cut long documents instead of the doc-stage prompt "
              "(as prox refine --truncate-document; use the same in both).")
def annotate(input_path: str, output_path: str, text_key: str, id_key: str, tasks: int, workers: int,
             overwrite: bool, teacher: TeacherSpec, annotation: AnnotationSettings, tokenizer: str, domain: str,
             batch_size: int, limit: int, truncate_document: bool) -> None:
    """Build a fine-tuning set for refiners from INPUT's documents into OUTPUT: a Hugging Face dataset
    (parquet; configs "doc" and "chunk", splits train and validation; datasets.load_dataset(OUTPUT, "doc")
    opens it), the refused answers in OUTPUT/refused/, counts in OUTPUT/stats.json. Rerun the same
    command to resume."""
    if teacher.kind == "chat" and not (teacher.endpoint and teacher.model):
        raise click.UsageError("--teacher chat needs --teacher-endpoint URL and --teacher-model NAME "
                               "(or --teacher rules, offline)")
    try:
        check_prompts(annotation.language, annotation.stages, annotation.method)
    except ValueError as error:
        raise click.UsageError(str(error)) from error

    def pipeline(shards: list[str]) -> list:
        load_tokenizer(tokenizer)  # fail here, with one clear message, rather than inside a task
        return [
            ShardReader(input_path, output_path, shards, text_key=text_key, id_key=id_key, limit=limit,
                        job="annotations"),
            AnnotateDocuments(teacher, tokenizer, domain, batch_size, truncate_document, annotation),
            ShardWriter(output_path, "annotations"),
            ShardStats(output_path, job="annotations"),
        ]

    settings = {"command": "annotate", "teacher": teacher.kind, "teacher_model": teacher.model,
                "annotation": annotation.to_dict(), "tokenizer": tokenizer, "domain": domain,
                "truncate_document": truncate_document, "text_key": text_key, "id_key": id_key, "limit": limit}
    stats = run_job(input_path, output_path, pipeline, settings, tasks=tasks, workers=workers, job="annotations",
                    overwrite=overwrite)
    write_dataset_card(output_path)
    if not stats["ran_shards"]:
        click.echo(f"nothing to do: all {stats['shards']['total']} shards are already done in {output_path}")
    print_annotation_summary(stats)
    if stats["failed_shards"] or (stats["pending_shards"] and limit < 0):
        raise SystemExit(1)


CARD = """---
configs:
{configs}
---
# Refiner fine-tuning set, made by `prox annotate`

Configs `doc` and `chunk`, splits `train` and `validation`: each row's `prompt` and `prompt_token_ids`
are exactly what `prox refine` sends for that document or chunk, `completion` is the program the refiner
should write. Refused teacher answers are in `refused/`, the counts in `stats.json`.
"""


def write_dataset_card(output_path: str) -> None:
    """The README.md whose header tells `datasets` where each config's splits are (those with files)."""
    folder = get_datafolder(output_path)
    configs = []
    for stage in ("doc", "chunk"):
        splits = [f"  - split: {split}\n    path: {stage}/{split}/*.parquet" for split in ("train", "validation")
                  if folder.glob(f"{stage}/{split}/*.parquet")]
        if splits:
            configs.append(f"- config_name: {stage}\n  data_files:\n" + "\n".join(splits))
    with folder.open("README.md", "w") as file:
        file.write(CARD.format(configs="\n".join(configs)))


def print_annotation_summary(stats: dict) -> None:
    shards = stats["shards"]
    click.echo(f"shards: {shards['done']}/{shards['total']} done, {shards['failed']} failed, "
               f"{shards['pending']} pending")
    click.echo(f"{'documents':<22}{stats['input']:>10,}")
    click.echo(f"{'doc examples':<22}{stats['doc_examples']:>10,}   keep {stats['keep']:,}, drop {stats['drop']:,}; "
               f"refused {stats['doc_refused']:,}")
    click.echo(f"{'chunk examples':<22}{stats['chunk_examples']:>10,}   of {stats['chunks']:,} chunks; "
               f"refused {stats['chunk_refused']:,}")
    click.echo(f"{'train / validation':<22}{stats['train']:>10,} / {stats['validation']:,} examples")
    if stats["programs_by_kind"]:
        click.echo("programs with calls, by kind: " + ", ".join(f"{k} {v:,}" for k, v in
                                                                 stats["programs_by_kind"].items()))
    if stats["rewrite_discarded"]:
        click.echo("discarded from rewrites: " + ", ".join(f"{k} {v:,}" for k, v in
                                                           stats["rewrite_discarded"].items()))
    if stats["refused_by_category"]:
        click.echo("refused answers, by category: " + ", ".join(f"{k} {v:,}" for k, v in
                                                                stats["refused_by_category"].items()))
