"""Options shared by the commands that run programs."""

from __future__ import annotations

import functools
from collections.abc import Callable

import click
import yaml

from prox.execution import Policy
from prox.pipeline.executors import EXECUTORS, ExecutorSettings

_DEFAULT = Policy()


def run_options(command: Callable) -> Callable:
    """Input, output and parallelism."""
    options = [
        click.option("--input", "-i", "input_path", required=True,
                     help="Input folder (or one file) of .parquet, .jsonl or .jsonl.gz shards."),
        click.option("--output", "-o", "output_path", required=True, help="Output folder."),
        click.option("--text-key", default="text", show_default=True,
                     help="Column holding the text (metadata.NAME: a field of the metadata column)."),
        click.option("--id-key", default="id", show_default=True,
                     help="Column holding the document id (missing ids become FILE/ROW)."),
        click.option("--tasks", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Number of tasks the shards are split into (at least --workers)."),
        click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Tasks run at the same time. With vLLM and more than one worker, prox starts vLLM's "
                     "server on each GPU and the workers share it, so reading, prompts and writing keep the "
                     "GPUs busy."),
        click.option("--overwrite", is_flag=True,
                     help="Delete the results already in OUTPUT and start over (needed to change settings)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


_EXECUTOR_OPTIONS = [
    click.option("--executor", type=click.Choice(EXECUTORS), default="local", show_default=True,
                 help="Where tasks run: here, as a Slurm job array (submitted; the command returns), or on Ray."),
    click.option("--slurm-partition", default=None, help="Slurm partition (slurm)."),
    click.option("--slurm-time", default="24:00:00", show_default=True, help="Time limit per task (slurm)."),
    click.option("--wait", "slurm_wait", is_flag=True,
                 help="Wait until the job array ends, then write the final statistics and print the summary; "
                 "exit status 1 if a shard failed or was left undone. For scripts that chain steps (slurm)."),
    click.option("--slurm-array-parallel", type=click.IntRange(min=1), default=None,
                 help="Array tasks running at once [default: no limit] (slurm)."),
    click.option("--job-name", default="prox", show_default=True, help="Job name (slurm)."),
    click.option("--cpus-per-task", type=click.IntRange(min=1), default=1, show_default=True,
                 help="CPUs per task (slurm, ray)."),
    click.option("--mem-per-cpu-gb", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
                 help="Memory per CPU in GB (slurm, ray)."),
    click.option("--gpus-per-task", type=click.IntRange(min=0), default=None,
                 help="GPUs per task [default: 1 with --engine vllm, else 0] (slurm, ray)."),
    click.option("--ray-address", default=None, help="Ray cluster address [default: start Ray here] (ray)."),
    click.option("--logging-dir", default=None,
                 help="Folder of the task logs (and Slurm's) [default: OUTPUT/logs/datatrove]."),
]


def option_group(options: list, settings_class: type, argument: str) -> Callable[[Callable], Callable]:
    """A decorator adding `options` to a command, which receives them as one value of
    `settings_class` in the argument named `argument`; an option of that name fills its `kind`."""

    def decorate(command: Callable) -> Callable:
        @functools.wraps(command)
        def with_group(*args, **kwargs):
            values = {"kind": kwargs.pop(argument)} if argument in kwargs else {}
            values |= {n: kwargs.pop(n) for n in list(kwargs) if n in settings_class.__dataclass_fields__}
            kwargs[argument] = settings_class(**values)
            return command(*args, **kwargs)

        for option in reversed(options):
            with_group = option(with_group)
        return with_group

    return decorate


# The command receives `executor: ExecutorSettings` (gpus_per_task None: the command decides).
executor_options = option_group(_EXECUTOR_OPTIONS, ExecutorSettings, "executor")

_POLICY_OPTIONS = [
    click.option("--threshold-1", type=float, default=_DEFAULT.threshold_1, show_default=True,
                 help="Keep the refined text only if at least this share of its words remains."),
    click.option("--threshold-2", type=float, default=_DEFAULT.threshold_2, show_default=True,
                 help="Drop the document when the program removed at least this share of its words."),
    click.option("--error-op", type=int, default=_DEFAULT.error_op, show_default=True,
                 help="Ignore a chunk program (keep the original text) with this many errors."),
    click.option("--min-words", type=int, default=_DEFAULT.min_words, show_default=True,
                 help="Drop a result with at most this many words."),
    click.option("--strict", "count_all_diagnostics", is_flag=True,
                 help="Count every diagnostic toward --error-op, not only the reference's errors."),
    click.option("--drop-threshold", type=click.FloatRange(0, 1), default=None,
                 help="Drop a document when the doc model's probability of dropping it "
                 "(metadata.doc_drop_probability) is at least this [default: the model's greedy program decides]."),
]
# The command receives `policy: Policy`: the reference's decision rules, with its defaults.
policy_options = option_group(_POLICY_OPTIONS, Policy, "policy")


def _load_config(context: click.Context, _parameter: click.Parameter, path: str | None) -> str | None:
    """Makes the file's settings the command's defaults, so flags given on the line win."""
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as file:
            values = yaml.safe_load(file) or {}
    except (OSError, yaml.YAMLError) as error:
        raise click.BadParameter(f"cannot read {path}: {error}") from error
    if not isinstance(values, dict):
        raise click.BadParameter(f"{path} must hold a mapping of option names to values")
    names = {p.name: p.name for p in context.command.params}  # a long option's name, or its parameter's
    names |= {o[2:].replace("-", "_"): p.name for p in context.command.params for o in p.opts if o.startswith("--")}
    keys = {str(key).replace("-", "_"): value for key, value in values.items()}
    values = {names[key]: value for key, value in keys.items() if key in names}
    if unknown := sorted(set(keys) - set(names)):
        raise click.BadParameter(f"{path}: unknown settings {', '.join(unknown)}")
    context.default_map = {**(context.default_map or {}), **values}
    return path


config_option = click.option(
    "--config", type=click.Path(exists=True, dir_okay=False), is_eager=True, expose_value=False,
    callback=_load_config, help="YAML file of option values (names as the long options); flags override it.")
