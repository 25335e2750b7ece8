"""One resolver for every data source a stream can name.

- a ``.jsonl``/``.json``/``.csv``/``.parquet`` file or a Hugging Face dataset name: as given;
- ``eu:DOMAIN/SPLIT`` (``eu:math/train``, ``eu:medicine/test``): a built-in domain, written once to the cache;
- ``eu:harmful/answers``: harmful questions with harmful answers (targeted-unlearning baselines);
- ``eu:harmful/preferences``: the same questions, a refusal chosen over the harmful answer (DPO);
- ``self-generated``: the forget corpus the model being unlearned writes itself, sampled once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from eu.errors import EUError

SELF_GENERATED = "self-generated"
BUILTIN = "eu:"


def resolve_source(source: str, self_generated: Callable[[], Path] | None = None) -> str:
    """A file path or dataset name to read for ``source``.

    ``self_generated`` produces the self-generated corpus (sampling it on first use); sources
    that are not ``self-generated`` never call it.
    """
    if source == SELF_GENERATED:
        if self_generated is None:
            raise EUError(f"{SELF_GENERATED!r} data needs the model that writes it; only data.forget can use it")
        return str(self_generated())
    if not source.startswith(BUILTIN):
        return source
    spec = source[len(BUILTIN) :]
    if spec == "harmful/answers":
        from eu.data.harmful_answers import prepare as prepare_harmful

        return str(prepare_harmful())
    if spec == "harmful/preferences":
        from eu.data.harmful_preferences import prepare as prepare_preferences

        return str(prepare_preferences())
    if "/" not in spec:
        raise EUError(f"{source!r}: write built-in data as eu:DOMAIN/SPLIT, e.g. eu:math/train")
    from eu.domains import prepare

    domain, split = spec.split("/", 1)
    return str(prepare(domain, split))
