"""Running a pipeline from a command: the errors a user can act on become one clear message."""

from __future__ import annotations

import click

from prox.engines import EngineError, ModelNotFoundError
from prox.pipeline import NoInputError, run_shards
from prox.pipeline.run_guard import OutputBusyError, SettingsChangedError

EXIT_BUSY = 75  # EX_TEMPFAIL: another run holds the output; cron may simply try again later


class OutputBusy(click.ClickException):
    exit_code = EXIT_BUSY


def run_job(input_path: str, output_path: str, build_pipeline, settings: dict, **options) -> dict:
    """`run_shards` with its failures turned into messages (exit status 1, or 75 when busy)."""
    try:
        return run_shards(input_path, output_path, build_pipeline, settings, **options)
    except OutputBusyError as error:
        raise OutputBusy(str(error)) from error
    except (NoInputError, ModelNotFoundError, EngineError, SettingsChangedError) as error:
        raise click.ClickException(str(error)) from error
    except OSError as error:  # a missing input, an output that cannot be written
        raise click.ClickException(f"{error.strerror or error}: {error.filename or ''}".rstrip(": ")) from error
