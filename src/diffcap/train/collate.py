"""Batches for TRL: prompts built by the inference path's own builder, answers appended.

Each row's prompt goes through :func:`diffcap.models.chat.render_requests` and
:func:`~diffcap.models.chat.encode_prompts` — the very calls
:class:`~diffcap.models.transformers_backend.TransformersBackend` makes before ``generate`` —
so the tokens a model is trained to continue are the tokens it is given at inference. The
answer (plus the end-of-sequence token, so the model learns to stop) follows; the loss covers
only the answer.

    collator = SFTCollator(processor)        # SFTTrainer(data_collator=collator, ...)
    batch = collator([example.to_row(), ...])  # input_ids, attention_mask, pixel_values, labels
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from diffcap.models.chat import encode_prompts, render_requests, tokenizer_of
from diffcap.train.examples import TrainExample

__all__ = ["DPOCollator", "SFTCollator", "encode_with_completions"]


def encode_with_completions(
    processor: Any, examples: Sequence[TrainExample], completions: Sequence[str]
) -> dict[str, Any]:
    """``examples[i]``'s prompt (as inference encodes it) followed by ``completions[i]`` and
    EOS; -> the processor's tensors with ``input_ids``/``attention_mask`` extended and a
    ``completion_mask`` (1 on completion tokens), flushed left."""
    import torch
    from trl.trainer.utils import flush_left

    texts, images = render_requests(processor, [e.request() for e in examples])
    out = encode_prompts(processor, texts, images, padding_side="left")
    tok = tokenizer_of(processor)
    eos = [tok.eos_token_id] if tok.eos_token_id is not None else []
    ids = [tok(c, add_special_tokens=False)["input_ids"] + eos for c in completions]
    width = max(len(i) for i in ids)
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    comp = torch.tensor([i + [pad] * (width - len(i)) for i in ids], dtype=torch.long)
    comp_mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i in ids])
    prompt_mask = out["attention_mask"]
    extra = [k for k, v in out.items() if _per_token(k, v, prompt_mask)]
    tensors = [torch.cat((out[k], torch.zeros_like(comp)), dim=1) for k in extra]
    mask = torch.cat((prompt_mask, comp_mask), dim=1)
    input_ids = torch.cat((out["input_ids"], comp), dim=1)
    completion_mask = torch.cat((torch.zeros_like(prompt_mask), comp_mask), dim=1)
    mask, input_ids, completion_mask, *tensors = flush_left(
        mask, input_ids, completion_mask, *tensors
    )
    result = dict(out)
    result.update(zip(extra, tensors, strict=True))
    result.update(input_ids=input_ids, attention_mask=mask, completion_mask=completion_mask)
    return result


def _per_token(key: str, value: Any, mask: Any) -> bool:
    """Extra per-token tensors a processor returns (token type ids) that must grow too."""
    if key in ("input_ids", "attention_mask"):
        return False
    return getattr(value, "shape", None) == mask.shape


@dataclass
class SFTCollator:
    """Rows of :meth:`TrainExample.to_row` -> a supervised batch (labels on answers only)."""

    processor: Any

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        examples = [TrainExample.from_row(r) for r in rows]
        batch = encode_with_completions(self.processor, examples, [e.answer for e in examples])
        completion_mask = batch.pop("completion_mask")
        batch["labels"] = batch["input_ids"].masked_fill(completion_mask == 0, -100)
        return batch


@dataclass
class DPOCollator:
    """Preference rows (a TrainExample row plus ``chosen``/``rejected``) -> the batch TRL's
    DPOTrainer reads: the chosen sequences, then the rejected ones, with ``completion_mask``."""

    processor: Any

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        examples = [TrainExample.from_row(r) for r in rows]
        answers = [r["chosen"] for r in rows] + [r["rejected"] for r in rows]
        return encode_with_completions(self.processor, examples + examples, answers)
