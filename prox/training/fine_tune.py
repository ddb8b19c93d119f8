"""The fine-tuning run: transformers' Trainer (GPUs through accelerate when present, else the CPU),
with the loss of each completion token weighted as the examples say."""

from __future__ import annotations

import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

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
    max_length: int = 2048  # prompt and completion; longer prompts are cut from their end
    key_token_weight: float = 1.0
    seed: int = 0
    logging_steps: int = 10

    def to_dict(self) -> dict:
        return asdict(self)


def fine_tune(settings: TrainSettings, log=print) -> dict:
    """Trains `settings.base` on the stage's train split; writes the model and its tokenizer to
    `settings.output` (a folder prox refine takes as --doc-model or --chunk-model). Returns figures
    of the run."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments

    rows = split_rows(settings.data, settings.stage, "train")
    if not rows:
        raise DataError(f"{settings.data} has no {settings.stage}/train/*.parquet rows: annotate it first "
                        f"(prox annotate --stage {settings.stage} or all)")
    tokenizer = AutoTokenizer.from_pretrained(settings.base)
    check_tokenizer(rows, tokenizer)
    examples = build_examples(rows, tokenizer, settings.key_token_weight, settings.max_length)
    model = AutoModelForCausalLM.from_pretrained(settings.base)
    devices = max(torch.cuda.device_count(), 1)
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
                                  data_collator=_Collator(tokenizer.pad_token_id if tokenizer.pad_token_id is not None
                                                          else tokenizer.eos_token_id))
    log(f"training {settings.base} on {len(examples)} {settings.stage} examples: {accumulation} micro-batches of "
        f"{settings.micro_batch_size} per step on {devices} {'GPU' if cuda else 'CPU'} device(s)")
    result = trainer.train()
    trainer.save_model(settings.output)
    shutil.rmtree(arguments.output_dir, ignore_errors=True)  # nothing is saved there (save_strategy "no")
    tokenizer.save_pretrained(settings.output)
    return {"examples": len(examples), "steps": result.global_step, "train_loss": result.training_loss,
            "seconds": result.metrics.get("train_runtime")}


class _Collator:
    """Pads a batch to its longest example: pad tokens are masked and weigh 0."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, batch: list[Example]) -> dict:
        import torch

        length = max(len(e.input_ids) for e in batch)
        ids = [e.input_ids + [self.pad_id] * (length - len(e.input_ids)) for e in batch]
        mask = [[1] * len(e.input_ids) + [0] * (length - len(e.input_ids)) for e in batch]
        weights = [e.weights + [0.0] * (length - len(e.weights)) for e in batch]
        return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask),
                "weights": torch.tensor(weights)}


def _weighted_trainer():
    """transformers' Trainer with the loss weighted per token (made on first use: importing
    transformers' Trainer takes seconds)."""
    import torch
    from transformers import Trainer

    class WeightedTrainer(Trainer):
        loss_is_scaled_for_ga = False  # a mean per micro-batch: the Trainer divides by the accumulation

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            weights = inputs.pop("weights")
            outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
            logits = outputs.logits[:, :-1].float()
            targets = inputs["input_ids"][:, 1:]
            weights = weights[:, 1:].to(logits.dtype)
            losses = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                                                       reduction="none").view_as(weights)
            loss = (losses * weights).sum() / weights.sum().clamp(min=1e-8)
            return (loss, outputs) if return_outputs else loss

    return WeightedTrainer
