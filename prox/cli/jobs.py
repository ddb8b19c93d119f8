"""Running a pipeline from a command: the errors a user can act on become one clear message."""

from __future__ import annotations

import click

from prox.cli.summary import print_summary
from prox.engines import EngineError, ModelNotFoundError
from prox.pipeline import NoInputError, run_shards
from prox.pipeline.run_guard import OutputBusyError, SettingsChangedError
from prox.pipeline.slurm_jobs import SlurmError

EXIT_BUSY = 75  # EX_TEMPFAIL: another run holds the output; cron may simply try again later


class OutputBusy(click.ClickException):
    exit_code = EXIT_BUSY


def finish(stats: dict, output_path: str, previewed: bool = False) -> None:
    """Tells how the run ended: the summary, or where a Slurm submission's progress shows; exit
    status 1 when shards failed, or are left pending by a run that should have done them all."""
    if stats.get("submitted"):
        click.echo(f"submitted Slurm job {stats['submitted']}: {stats['shards']['pending']} shards to do; "
                   f"`prox stats {output_path} --input INPUT --shards` shows progress")
        return
    if not stats["ran_shards"]:
        click.echo(f"nothing to do: all {stats['shards']['total']} shards are already done in {output_path}")
    print_summary(stats)
    if stats["failed_shards"] or (stats["pending_shards"] and not previewed):
        raise SystemExit(1)


def run_job(input_path: str, output_path: str, build_pipeline, settings: dict, **options) -> dict:
    """`run_shards` with its failures turned into messages (exit status 1, or 75 when busy)."""
    try:
        return run_shards(input_path, output_path, build_pipeline, settings, **options)
    except OutputBusyError as error:
        raise OutputBusy(str(error)) from error
    except (NoInputError, ModelNotFoundError, EngineError, SettingsChangedError, SlurmError,
            ValueError) as error:
        raise click.ClickException(str(error)) from error
    except OSError as error:  # a missing input, an output that cannot be written
        raise click.ClickException(f"{error.strerror or error}: {error.filename or ''}".rstrip(": ")) from error
