"""A tiny randomly initialised Llama with a byte-level tokenizer, built locally (no download).

It makes every command runnable in seconds on any machine and backs the test suite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from eu.io import atomic_dir, build_once, cache_dir
from eu.rng import preserved_rng

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TINY_VERSION = "1"


def build_tiny_tokenizer(chat_template: str | None = CHATML_TEMPLATE) -> Any:
    """A byte-level BPE tokenizer without merges: 256 byte tokens plus ChatML specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    byte_symbols = pre_tokenizers.ByteLevel.alphabet()
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for sym in sorted(byte_symbols):
        vocab[sym] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(SPECIAL_TOKENS)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    tok.chat_template = chat_template
    return tok


def random_llama(vocab_size: int, seed: int = 0, dtype: torch.dtype = torch.float32, **sizes: Any) -> Any:
    """A randomly initialised Llama-architecture causal LM (tied embeddings, ids 0/1/2 for pad/bos/eos).

    The weights depend on ``seed`` only; the global random generators are left as they were.
    """
    from transformers import AutoModelForCausalLM, LlamaConfig

    ids = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2)
    config = LlamaConfig(vocab_size=vocab_size, tie_word_embeddings=True, **ids, **sizes)
    with preserved_rng():
        torch.manual_seed(seed)
        return AutoModelForCausalLM.from_config(config, dtype=dtype)


def build_tiny_llama(vocab_size: int, seed: int = 0, hidden_size: int = 64, layers: int = 2) -> Any:
    """A randomly initialised Llama-architecture causal LM of about 60k parameters."""
    shape = dict(hidden_size=hidden_size, intermediate_size=hidden_size * 4, num_hidden_layers=layers)
    return random_llama(
        vocab_size, seed, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, **shape
    )


def save_tiny_model(out_dir: str | Path, seed: int = 0) -> Path:
    """Write the tiny model and tokenizer as a Hugging Face folder at ``out_dir``."""
    tok = build_tiny_tokenizer()
    model = build_tiny_llama(len(tok), seed=seed)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    with atomic_dir(out_dir, kind="model", overwrite=True) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    return Path(out_dir)


def build_tiny_model() -> Path:
    """The ``tiny-llama`` alias: build once into the cache, then reuse."""
    path = cache_dir() / "models" / f"tiny-llama-v{TINY_VERSION}"
    return build_once(path, (path / "config.json").is_file, lambda: save_tiny_model(path))
