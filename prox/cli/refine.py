"""`prox refine`: the main job. A refining model writes each document's programs; prox runs them."""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import Iterator
from pathlib import Path

import click
from datatrove.io import get_datafolder

from prox.cli.engine_options import EngineOptions, engine_options
from prox.cli.jobs import finish, run_job
from prox.cli.options import config_option, executor_options, policy_options, run_options
from prox.engines import ModelNotFoundError, load_tokenizer
from prox.engines.models import check_model
from prox.engines.vllm_server import vllm_servers
from prox.execution import Policy
from prox.pipeline import ApplyPrograms, ShardReader, ShardStats, ShardWriter
from prox.pipeline.build_prompts import BuildPrompts
from prox.pipeline.executors import ExecutorSettings
from prox.pipeline.generate_programs import GeneratePrograms, LineHandoff
from prox.pipeline.input_files import is_local
from prox.pipeline.shards import LOGS_DIR
from prox.prompts import load_prompts


def stages_of(stage: str) -> tuple[str, ...]:
    return ("doc", "chunk") if stage == "all" else (stage,)


@click.command()
@config_option
@run_options
@click.option("--domain", type=click.Choice(["web", "math"]), default="web", show_default=True,
              help="Which refiners and prompt pieces (programs/prompts/DOMAIN.yaml).")
@click.option("--doc-model", help="Doc-stage model: a local folder or hub name [default: the domain's "
              "published model, e.g. gair-prox/web-doc-refining-lm].")
@click.option("--chunk-model", help="Chunk-stage model [default: e.g. gair-prox/web-chunk-refining-lm].")
@click.option("--stage", type=click.Choice(["doc", "chunk", "all"]), default="all", show_default=True,
              help="Which stages run (chunk alone refines every document).")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True,
              help="Documents per generation batch.")
@click.option("--limit", type=int, default=-1, help="Read at most this many documents per task (a preview).")
@click.option("--keep-raw", is_flag=True, help="Keep the input text in metadata.raw_content.")
@click.option("--truncate-document", is_flag=True,
              help="Cut long documents instead of the doc-stage prompt, so the template stays whole "
              "(the reference cuts the prompt at 2000 tokens).")
@click.option("--constrained", is_flag=True,
              help="The models may only write programs of the language (a grammar made from programs/language.yaml: "
              "calls as prox writes them, the chunk's own line numbers, strings of at most 128 characters); "
              "vLLM, its server, and transformers (llguidance).")
@click.option("--dry-run", is_flag=True, help="Build every prompt of both stages (as if the doc stage kept "
              "everything) into OUTPUT/prompts/ and print the totals; needs only the tokenizers.")
@click.option("--throughput", type=float, default=None,
              help="With --dry-run: prompt tokens per second of your engine, to estimate the generation time.")
@engine_options
@executor_options
@policy_options
def refine(input_path: str, output_path: str, text_key: str, id_key: str, tasks: int, workers: int,
           overwrite: bool, domain: str,
           doc_model: str | None, chunk_model: str | None, stage: str, engine: EngineOptions, batch_size: int,
           limit: int, keep_raw: bool, truncate_document: bool, constrained: bool, dry_run: bool,
           throughput: float | None,
           executor: ExecutorSettings, policy: Policy) -> None:
    """Refine the documents of INPUT: the doc-stage model keeps or drops each document, the
    chunk-stage model writes line removals and normalizations; kept and modified documents go to
    OUTPUT, dropped ones to OUTPUT/excluded/, with the programs in metadata.doc_program and
    metadata.chunk_program. Rerun the same command to resume."""
    prompts = load_prompts(domain)
    specs = engine.specs(stages_of(stage), {"doc": doc_model, "chunk": chunk_model},
                         {"doc": prompts.doc_model, "chunk": prompts.chunk_model})
    if policy.drop_threshold is not None and ("doc" not in specs or specs["doc"].reads_subject):
        raise click.UsageError("--drop-threshold needs a model at the doc stage "
                               "(the rules engine gives no probabilities)")
    if dry_run:
        return dry_run_prompts(input_path, output_path, text_key, id_key, tasks, workers, overwrite, domain,
                               {s: spec.tokenizer_name for s, spec in specs.items()}, batch_size, limit,
                               truncate_document, throughput)

    local = executor.kind == "local"
    served = engine.serves_workers(executor.kind, workers)
    if served:  # prox's vLLM servers start before the tasks: a model they cannot load must be named first
        try:
            for spec in specs.values():
                check_model(spec.model)
        except ModelNotFoundError as error:
            raise click.ClickException(str(error)) from error
    endpoints: dict[str, str] = {}  # of prox's vLLM servers, once they run

    @contextlib.contextmanager
    def servers() -> Iterator[None]:
        options = next(iter(specs.values())).options
        with vllm_servers([spec.model for spec in specs.values()], engine.devices() or [None], options,
                          server_log_dir(output_path)) as started:
            endpoints.update(started)
            yield

    def pipeline(shards: list[str]) -> list:
        for spec in specs.values():  # fail here, with one clear message, rather than inside a task
            load_tokenizer(spec.tokenizer_name)
            if spec.kind in ("transformers", "vllm"):
                check_model(spec.model)
        run_specs = engine.as_clients(specs, endpoints) if served else specs
        tokenizers = {spec.tokenizer_name for spec in specs.values()}
        handoff = LineHandoff() if len(specs) == 2 and len(tokenizers) == 1 else None  # lines tokenized once
        generate = [GeneratePrograms(s, spec, domain, batch_size, truncate_document, handoff, constrained,
                                     policy.drop_threshold) for s, spec in run_specs.items()]
        return [
            ShardReader(input_path, output_path, shards, text_key=text_key, id_key=id_key, limit=limit),
            *generate,
            ApplyPrograms(policy, keep_raw=keep_raw),
            ShardWriter(output_path),
            ShardStats(output_path),
        ]

    settings = {"command": "refine", "domain": domain, "stages": list(specs),
                "models": {s: spec.model for s, spec in specs.items()},
                "tokenizers": {s: spec.tokenizer_name for s, spec in specs.items()}, "engine": engine.settings(),
                "policy": policy.to_dict(), "text_key": text_key, "id_key": id_key,
                "truncate_document": truncate_document, "constrained": constrained, "keep_raw": keep_raw,
                "limit": limit}
    if executor.gpus_per_task is None:
        executor = dataclasses.replace(executor, gpus_per_task=int(engine.resolved_kind == "vllm"))
    stats = run_job(input_path, output_path, pipeline, settings, tasks=tasks, workers=workers,
                    devices=engine.devices() if local and not served else [], overwrite=overwrite,
                    executor=executor, around=servers if served else None)
    finish(stats, output_path, previewed=limit >= 0)


def server_log_dir(output_path: str) -> Path:
    """Where prox's vLLM servers log: beside the run's logs, or in a temporary folder when the
    output is remote storage."""
    folder = get_datafolder(output_path)
    if is_local(folder):
        return Path(folder.path) / LOGS_DIR
    return Path(tempfile.mkdtemp(prefix="prox-vllm-logs-"))


def dry_run_prompts(input_path: str, output_path: str, text_key: str, id_key: str, tasks: int, workers: int,
                    overwrite: bool, domain: str, models: dict[str, str], batch_size: int, limit: int,
                    truncate_document: bool, throughput: float | None) -> None:
    """Writes the prompts of every document to OUTPUT/prompts/ and prints what generating them takes."""

    def pipeline(shards: list[str]) -> list:
        for model in models.values():
            load_tokenizer(model)
        return [
            ShardReader(input_path, output_path, shards, text_key=text_key, id_key=id_key, limit=limit, job="prompts"),
            BuildPrompts(models, domain, batch_size, truncate_document),
            ShardWriter(output_path, "prompts"),
            ShardStats(output_path, job="prompts"),
        ]

    settings = {"command": "refine --dry-run", "domain": domain, "models": models,
                "truncate_document": truncate_document, "limit": limit, "text_key": text_key}
    stats = run_job(input_path, output_path, pipeline, settings, tasks=tasks, workers=workers, job="prompts",
                    overwrite=overwrite)
    click.echo(f"\nprompts in {output_path}/prompts/ (shards: {stats['shards']['done']}/{stats['shards']['total']} "
               f"done, {stats['shards']['failed']} failed)")
    click.echo(f"{'documents':<20}{stats['input']:>14,}")
    for stage in models:
        click.echo(f"{stage + '-stage prompts':<20}{stats[f'{stage}_prompts']:>14,}   "
                   f"{stats[f'{stage}_tokens']:>14,} prompt tokens")
    tokens = sum(stats[f"{stage}_tokens"] for stage in models)
    if throughput:
        seconds = tokens / throughput
        click.echo(f"at {throughput:,.0f} prompt tokens/s: about {seconds:,.0f} s ({seconds / 3600:.2f} GPU hours) "
                   "of prompt processing, plus generation")
    else:
        click.echo("give --throughput (prompt tokens/s of your engine) for a time estimate")
    if stats["failed_shards"]:
        raise SystemExit(1)
