"""A tiny LLaVA (~100k parameters, random weights) built from configs into a folder.

Real architecture, real processor, real chat template, nonsense output: enough to exercise
every code path of the transformers backend and of ``transformers serve`` in seconds, with no
model hub. The folder holds config.json, model.safetensors, tokenizer files (a byte-level BPE
trained here with an ``<image>`` special token), a CLIPImageProcessor config and a Jinja chat
template that renders text + image content parts.

    from diffcap.models.tiny import build_tiny_llava
    path = build_tiny_llava("models/tiny-llava")      # ~3 s, needs the `local` extra

    diffcap models --build-tiny models/tiny-llava       # the same, from the CLI
    diffcap caption clip.mp4 --out c.jsonl --backend transformers --model models/tiny-llava

For trying the whole pipeline offline (and for the test suite); its captions are gibberish.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: Reported as the model name in tests (any string works with a forced-model server).
MODEL_NAME = "tiny-llava"
IMAGE_SIZE = 32
PATCH_SIZE = 8
#: Image tokens per image: (32 / 8)^2 patches ("default" strategy drops the CLS token).
IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ message['role'] }}: "
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] in ['image', 'image_url'] %}<image>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)

_CORPUS = [
    "A man in a red jacket walks a brown dog along a sandy beach at sunset.",
    "The camera pans left as a white car drives past tall green trees.",
    "Two children play with a blue ball in a sunny park near a small lake.",
    "A woman sits at a wooden table and pours coffee into a white cup.",
    "The scene cuts to a close-up of the dog, which shakes water from its fur.",
    "Describe what changed between the frames: actions, poses, positions, camera movement.",
    "Keyframe 1 is at 0.0 s and keyframe 2 is at 2.0 s. Summarize the video.",
]
_SPECIALS = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]


def _build_tokenizer(out: Path) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
        padding_side="left",
    )
    fast.save_pretrained(out)
    return fast


def build_tiny_llava(out: str | Path, seed: int = 0, positions: int = 8192) -> Path:
    """Build the tiny model + processor into ``out`` (created) and return it. ``positions``
    is its context window (``max_position_embeddings``; small to test context budgets)."""
    import torch
    from transformers import GenerationConfig, LlavaForConditionalGeneration

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _build_tokenizer(out)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in _SPECIALS}
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(_config(len(tokenizer), ids, positions)).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<s>"],
        eos_token_id=ids["</s>"],
        pad_token_id=ids["<pad>"],
        max_new_tokens=16,
        do_sample=False,
    )
    model.save_pretrained(out)
    _processor(tokenizer).save_pretrained(out)
    (out / "diffcap_tiny.json").write_text(json.dumps({"seed": seed, "kind": "tiny-llava"}))
    return out


def _config(vocab: int, ids: dict[str, int], positions: int = 8192) -> Any:
    """A LLaVA of a 2-layer CLIP vision tower and a 2-layer Llama (~150k parameters)."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        projection_dim=32,
    )
    text = LlamaConfig(
        vocab_size=vocab,
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=positions,
        bos_token_id=ids["<s>"],
        eos_token_id=ids["</s>"],
        pad_token_id=ids["<pad>"],
    )
    return LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=ids["<image>"],
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        image_seq_length=IMAGE_TOKENS,
    )


def _processor(tokenizer: Any) -> Any:
    import transformers

    # The PIL flavour needs no torchvision (and gives no fallback warning); older
    # transformers only have the plain one.
    plain = transformers.CLIPImageProcessor
    image_processor_cls = getattr(transformers, "CLIPImageProcessorPil", None) or plain
    image_processor = image_processor_cls(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    return transformers.LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        chat_template=CHAT_TEMPLATE,
        num_additional_image_tokens=1,
    )
