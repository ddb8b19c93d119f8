"""`prox train`: fine-tune a refiner on an annotated set (prox annotate)."""

from __future__ import annotations

import click

from prox.engines import ModelNotFoundError
from prox.training.examples import DataError
from prox.training.fine_tune import TrainSettings

_DEFAULT = TrainSettings(data="", base="", output="", stage="doc")


@click.command()
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False),
              help="The annotated set (the output of prox annotate).")
@click.option("--base", required=True, help="Model to fine-tune: a local folder or hub name (its tokenizer must be "
              "the one the set was annotated with, --tokenizer of prox annotate).")
@click.option("--output", "-o", required=True,
              help="Folder of the trained model: prox refine takes it as --doc-model or --chunk-model.")
@click.option("--stage", type=click.Choice(["doc", "chunk"]), required=True, help="Which refiner to train.")
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=_DEFAULT.epochs, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=_DEFAULT.batch_size, show_default=True,
              help="Examples per optimizer step over all devices (gradient accumulation makes up the rest).")
@click.option("--micro-batch-size", type=click.IntRange(min=1), default=_DEFAULT.micro_batch_size,
              show_default=True, help="Examples per forward pass on one device.")
@click.option("--learning-rate", type=float, default=_DEFAULT.learning_rate, show_default=True)
@click.option("--min-learning-rate", type=float, default=_DEFAULT.min_learning_rate, show_default=True,
              help="Where the cosine schedule ends.")
@click.option("--warmup-ratio", type=click.FloatRange(0, 1, max_open=True), default=_DEFAULT.warmup_ratio,
              show_default=True, help="Share of the steps that warm the learning rate up.")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=_DEFAULT.weight_decay, show_default=True)
@click.option("--max-steps", type=int, default=_DEFAULT.max_steps, show_default=True,
              help="Stop after this many optimizer steps (-1: the epochs decide).")
@click.option("--max-length", type=click.IntRange(min=8), default=_DEFAULT.max_length, show_default=True,
              help="Tokens of prompt and completion; longer examples are left out, and counted.")
@click.option("--key-token-weight", type=click.FloatRange(min=0), default=_DEFAULT.key_token_weight,
              show_default=True, help="Loss weight of the tokens of function names and argument values, against 1 "
              "for the rest of the completion (TL-Training).")
@click.option("--seed", type=int, default=_DEFAULT.seed, show_default=True)
@click.option("--logging-steps", type=click.IntRange(min=1), default=_DEFAULT.logging_steps, show_default=True)
def train(**options) -> None:
    """Fine-tune BASE on DATA's train split of one stage (loss on the completion only) and write the
    model with its tokenizer to OUTPUT. Uses the GPUs when there are (launch with `accelerate launch -m
    prox train ...` for several), else the CPU."""
    from prox.training.fine_tune import fine_tune

    settings = TrainSettings(**options)
    try:
        figures = fine_tune(settings, log=click.echo)
    except (DataError, ModelNotFoundError) as error:
        raise click.ClickException(str(error)) from error
    except ImportError as error:  # transformers' Trainer without accelerate
        raise click.ClickException(f"{error}; install prox's training extra: pip install 'prox[train]'") from error
    except OSError as error:  # a base model that is neither a folder nor reachable on the hub
        raise click.ClickException(f"cannot load {settings.base}: {error}") from error
    click.echo(f"trained {figures['steps']} steps on {figures['examples']} examples in {figures['seconds']:.0f} s "
               f"(train loss {figures['train_loss']:.4f}); the model is in {settings.output}")
