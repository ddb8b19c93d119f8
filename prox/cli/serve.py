"""`prox serve`: one refining model behind an OpenAI-compatible completions API, on CPU or GPU.

For machines without vLLM: `prox refine --engine openai --endpoint URL` then sends its prompts here,
and concurrent requests are generated in shared batches.
"""

from __future__ import annotations

import click

from prox.engines import ModelNotFoundError


@click.command()
@click.option("--model", required=True, help="The model: a local folder or hub name. Clients name it by this "
              "same string.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every one).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port to listen on (0: any free one, named in the line printed when ready).")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default=None,
              help="Model dtype [default: the model's own].")
@click.option("--device", default=None, help="torch device [default: cuda if present].")
@click.option("--batch-tokens", type=click.IntRange(min=1), default=32768, show_default=True,
              help="Prompt plus output tokens per forward batch.")
@click.option("--max-batch-wait-ms", type=click.FloatRange(min=0), default=20.0, show_default=True,
              help="How long a batch waits for more concurrent requests before it starts.")
def serve(model: str, host: str, port: int, dtype: str | None, device: str | None, batch_tokens: int,
          max_batch_wait_ms: float) -> None:
    """Serve MODEL with POST /v1/completions (prompts as text or token ids, greedy decoding),
    GET /v1/models and GET /health, until interrupted (SIGINT or SIGTERM)."""
    from prox.engines.transformers_engine import TransformersEngine
    from prox.serving import serve as serve_model

    try:
        engine = TransformersEngine(model, dtype=dtype, device=device, batch_tokens=batch_tokens)
    except ModelNotFoundError as error:
        raise click.ClickException(str(error)) from error
    try:
        serve_model(engine, model, host, port, max_batch_wait_ms / 1000)
    except OSError as error:  # the address is taken or cannot be bound
        raise click.ClickException(f"cannot listen on {host}:{port}: {error}") from error
