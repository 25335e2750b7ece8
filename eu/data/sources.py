"""One resolver for every data source a stream can name.

- a ``.jsonl``/``.json``/``.csv``/``.parquet`` file or a Hugging Face dataset name: as given;
- ``eu:DOMAIN/SPLIT`` (``eu:math/train``, ``eu:medicine/test``): a built-in domain, written once to the cache;
- ``eu:harmful/answers``: harmful questions with harmful answers (targeted-unlearning baselines);
- ``eu:harmful/preferences``: the same questions, a refusal chosen over the harmful answer (DPO);
- ``eu:harmful/eraser``: those pairs, prompts partly wrapped in random noise (Eraser's forget data);
- ``eu:harmful/entity-answers``: questions about the entities of the harmful prompts, answered by
  the model being unlearned (Eraser's keep data);
- ``eu:harmful/model-answers``: the harmful prompts as they are, answered by the model being
  unlearned (Eraser's align data: its refusals, or whatever else it answers);
- ``eu:medicine-harmful/SPLIT`` (``train``, ``validation``, ``test``): harmful requests inside the
  medical domain with refusals, parts apart by template and entity (:mod:`eu.data.medicine_harmful`);
- ``self-generated``: the forget corpus the model being unlearned writes itself, sampled once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from eu.errors import EUError

SELF_GENERATED = "self-generated"
BUILTIN = "eu:"


def resolve_source(
    source: str,
    self_generated: Callable[[], Path] | None = None,
    entity_answers: Callable[[], Path] | None = None,
    model_answers: Callable[[], Path] | None = None,
) -> str:
    """A file path or dataset name to read for ``source``.

    ``self_generated`` produces the self-generated corpus (sampling it on first use),
    ``entity_answers`` the model's answers about the harmful prompts' entities and
    ``model_answers`` its answers to the harmful prompts; other sources never call them.
    """
    if source == SELF_GENERATED:
        if self_generated is None:
            raise EUError(
                f"{SELF_GENERATED!r} data needs the model that writes it; only data.forget and data.refuse can use it"
            )
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
    if spec == "harmful/eraser":
        from eu.data.harmful_eraser import prepare as prepare_eraser

        return str(prepare_eraser())
    if spec == "harmful/entity-answers":
        if entity_answers is None:
            raise EUError(f"{source!r} are answers the model writes itself; name it in a stream of eu fit's data")
        return str(entity_answers())
    if spec == "harmful/model-answers":
        if model_answers is None:
            raise EUError(f"{source!r} are answers the model writes itself; name it in a stream of eu fit's data")
        return str(model_answers())
    if spec.startswith("medicine-harmful/"):
        from eu.data.medicine_harmful import prepare as prepare_medicine_harmful

        return str(prepare_medicine_harmful(spec.split("/", 1)[1]))
    if "/" not in spec:
        raise EUError(f"{source!r}: write built-in data as eu:DOMAIN/SPLIT, e.g. eu:math/train")
    from eu.domains import prepare

    domain, split = spec.split("/", 1)
    return str(prepare(domain, split))
