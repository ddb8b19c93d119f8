"""The fine-tuning run: transformers' Trainer (GPUs through accelerate when present, else the CPU),
with the loss of each completion token weighted as the examples say."""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from prox.engines.models import check_model
from prox.training.examples import DataError, Example, build_examples, check_tokenizer, split_rows


@dataclass(frozen=True)
class TrainSettings:
    """The paper's settings for the 0.3B refiners as defaults (arXiv 2409.17115, Appendix A): full
    fine-tuning, batch 64, learning rate 1e-5 cosine to 1e-6, 3 epochs."""

    data: str
    base: str
    output: str
    stage: str  # "doc" or "chunk"
    epochs: float = 3.0
    batch_size: int = 64  # examples per optimizer step, over all devices
    micro_batch_size: int = 4  # examples per forward pass on one device
    learning_rate: float = 1e-5
    min_learning_rate: float = 1e-6
    warmup_ratio: float = 0.0  # share of the steps that warm the learning rate up
    weight_decay: float = 0.0
    max_steps: int = -1  # stop after this many optimizer steps (-1: the epochs decide)
    max_length: int = 2048  # prompt and completion; longer examples are left out (counted)
    key_token_weight: float = 1.0
    seed: int = 0
    logging_steps: int = 10

    def to_dict(self) -> dict:
        return asdict(self)


def fine_tune(settings: TrainSettings, log=print) -> dict:
    """Trains `settings.base` on the stage's train split; writes the model and its tokenizer to
    `settings.output` (a folder prox refine takes as --doc-model or --chunk-model) with the run's
    settings and figures (prox-train.json). Returns the figures."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments

    rows = split_rows(settings.data, settings.stage, "train")
    if not rows:
        raise DataError(f"{settings.data} has no {settings.stage}/train/*.parquet rows: annotate it first "
                        f"(prox annotate --stage {settings.stage} or all)")
    check_model(settings.base)
    tokenizer = AutoTokenizer.from_pretrained(settings.base)
    check_tokenizer(rows, tokenizer)
    examples, too_long = build_examples(rows, tokenizer, settings.key_token_weight, settings.max_length)
    if not examples:
        raise DataError(f"every example is longer than --max-length {settings.max_length}")
    model = AutoModelForCausalLM.from_pretrained(settings.base)
    processes = int(os.environ.get("WORLD_SIZE", "1"))  # accelerate launch (or torchrun) sets it
    devices = processes * (max(torch.cuda.device_count(), 1) if processes == 1 else 1)
    accumulation = max(1, math.ceil(settings.batch_size / (settings.micro_batch_size * devices)))
    cuda = torch.cuda.is_available()
    arguments = TrainingArguments(
        output_dir=str(Path(settings.output) / "checkpoints"), num_train_epochs=settings.epochs,
        max_steps=settings.max_steps, per_device_train_batch_size=settings.micro_batch_size,
        gradient_accumulation_steps=accumulation, learning_rate=settings.learning_rate,
        lr_scheduler_type="cosine_with_min_lr", lr_scheduler_kwargs={"min_lr": settings.min_learning_rate},
        warmup_steps=settings.warmup_ratio, weight_decay=settings.weight_decay, seed=settings.seed,
        logging_steps=settings.logging_steps, save_strategy="no", report_to="none", remove_unused_columns=False,
        use_cpu=not cuda, bf16=cuda and torch.cuda.is_bf16_supported(), dataloader_num_workers=0,
        disable_tqdm=True)
    trainer = _weighted_trainer()(model=model, args=arguments, train_dataset=examples,
                                  data_collator=Collator(tokenizer.pad_token_id if tokenizer.pad_token_id is not None
                                                          else tokenizer.eos_token_id))
    log(f"training {settings.base} on {len(examples)} {settings.stage} examples ({too_long} longer than "
        f"--max-length left out): {accumulation} micro-batches of {settings.micro_batch_size} per step on "
        f"{devices} {'GPU' if cuda else 'CPU'} device(s)")
    result = trainer.train()
    trainer.save_model(settings.output)
    figures = {"examples": len(examples), "too_long": too_long, "steps": result.global_step,
               "train_loss": result.training_loss, "seconds": result.metrics.get("train_runtime")}
    if trainer.is_world_process_zero():
        shutil.rmtree(arguments.output_dir, ignore_errors=True)  # nothing is saved there (save_strategy "no")
        tokenizer.save_pretrained(settings.output)
        (Path(settings.output) / "prox-train.json").write_text(
            json.dumps({"settings": settings.to_dict(), "figures": figures}, indent=2))
    return figures


class Collator:
    """Pads a batch on the left to its longest example (pad tokens masked, weighing 0), so that the
    completions end the rows and the model need only compute the logits of the last `keep` positions:
    the vocabulary's logits over whole prompts would dominate a small model's time and memory."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, batch: list[Example]) -> dict:
        import torch

        length = max(len(e.input_ids) for e in batch)
        pads = [length - len(e.input_ids) for e in batch]
        mask = torch.tensor([[0] * pad + [1] * len(e.input_ids) for e, pad in zip(batch, pads, strict=True)])
        return {"input_ids": torch.tensor([[self.pad_id] * pad + e.input_ids for e, pad in zip(batch, pads,
                                                                                                strict=True)]),
                "attention_mask": mask, "position_ids": (mask.cumsum(-1) - 1).clamp(min=0),
                "weights": torch.tensor([[0.0] * pad + e.weights for e, pad in zip(batch, pads, strict=True)]),
                "keep": torch.tensor(max(e.weighted for e in batch) + 1)}


def weighted_loss(model, inputs: dict):
    """The batch's loss: each completion token's cross-entropy times its weight, over the weights' sum.
    Only the logits of the last `keep` positions are computed: they predict every weighted token."""
    import torch

    keep = int(inputs["keep"])
    outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                    position_ids=inputs["position_ids"], logits_to_keep=keep)
    logits = outputs.logits[:, :-1].float()
    targets = inputs["input_ids"][:, -keep + 1:]
    weights = inputs["weights"][:, -keep + 1:].to(logits.dtype)
    losses = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                                               reduction="none").view_as(weights)
    return (losses * weights).sum() / weights.sum().clamp(min=1e-8), outputs


def _weighted_trainer():
    """transformers' Trainer with weighted_loss (made on first use: importing transformers' Trainer
    takes seconds)."""
    from transformers import Trainer

    class WeightedTrainer(Trainer):
        loss_is_scaled_for_ga = False  # a mean per micro-batch: the Trainer divides by the accumulation

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss, outputs = weighted_loss(model, inputs)
            return (loss, outputs) if return_outputs else loss

    return WeightedTrainer
