"""The reference pipeline's ways, written out plainly: the yardstick for prox's tests and benchmarks.

Transcribed from PROX_SPEC.md, in the reference's manner (one tokenizer call per line); not used by
prox itself.
"""

from __future__ import annotations

SYSTEM = "You are a helpful, respectful and honest assistant."


def reference_render(user: str) -> str:
    """Llama-2's chat format with the ProX system message, BOS included."""
    return "<s>[INST] " + ("<<SYS>>\n" + SYSTEM + "\n<</SYS>>\n\n" + user).strip() + " [/INST]"


def reference_chunks(text: str, tokenizer, max_token: int = 1500) -> list[str]:
    """The reference's chunking: numbered lines packed greedily, one tokenizer call per line."""
    chunks, current, total = [], [], 0
    for index, line in enumerate(text.split("\n")):
        numbered = f"[{index:03d}]{line}"
        count = len(tokenizer.encode(numbered))
        if total + count <= max_token:
            current.append(numbered)
            total += count
            continue
        if current:
            chunks.append("\n".join(current))
        current, total = [numbered], count
        if count > max_token:
            chunks.append("\n".join(current))
            current, total = [], 0
    if current:
        chunks.append("\n".join(current))
    return chunks


def reference_chunk_prompts(text: str, tokenizer) -> list[str]:
    return [reference_render(f"[doc]\n{chunk}\n[/doc]") for chunk in reference_chunks(text, tokenizer)] if text else []
