"""Chat rendering: one conversation format at sampling, training and evaluation; the chat tokenizer."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eu.errors import EUError


@dataclass(frozen=True)
class ChatRecord:
    """One example: the user turn, the assistant response and an optional system turn.

    ``system`` is ``None`` for no system turn (the template may then insert its default system
    prompt) and ``""`` for an empty one, as the self-generated corpus is sampled.
    """

    user: str
    assistant: str
    system: str | None = None


def load_chat_template(template: str | None) -> str | None:
    """A Jinja chat template given inline or as a path to a ``.jinja`` file."""
    if template is None:
        return None
    path = Path(template)
    if len(template) < 4096 and "{" not in template and path.is_file():
        return path.read_text(encoding="utf-8")
    return template


def require_chat_template(tokenizer: Any, model_name: str, template: str | None = None) -> None:
    """Install ``template`` on ``tokenizer`` or fail clearly when it has none."""
    text = load_chat_template(template)
    if text is not None:
        tokenizer.chat_template = text
    if not getattr(tokenizer, "chat_template", None):
        raise EUError(
            f"the tokenizer of {model_name!r} has no chat template; pass one with "
            "--model.chat_template (a Jinja string or a path to a .jinja file)"
        )


def load_chat_tokenizer(model: str, trust_remote_code: bool = False, chat_template: str | None = None) -> Any:
    """The tokenizer of ``model`` (alias, id or folder) with a chat template, or a clear ``EUError``.

    ``chat_template`` (a Jinja string or ``.jinja`` path) replaces the tokenizer's own.
    """
    from eu.models import load_tokenizer

    tokenizer = load_tokenizer(model, trust_remote_code)
    require_chat_template(tokenizer, model, chat_template)
    return tokenizer


def messages(record: ChatRecord, with_answer: bool = True) -> list[dict[str, str]]:
    """The chat messages of ``record``; a system turn whenever ``record.system`` is not ``None``."""
    msgs = [{"role": "system", "content": record.system}] if record.system is not None else []
    msgs.append({"role": "user", "content": record.user})
    if with_answer:
        msgs.append({"role": "assistant", "content": record.assistant})
    return msgs


def _ids(tokenizer: Any, msgs: list[dict[str, str]], add_generation_prompt: bool) -> list[int]:
    out = tokenizer.apply_chat_template(
        msgs, tokenize=True, add_generation_prompt=add_generation_prompt, return_dict=False
    )
    if hasattr(out, "keys"):  # some versions return a BatchEncoding regardless
        out = out["input_ids"]
    return list(out)


def encode_record(tokenizer: Any, record: ChatRecord) -> tuple[list[int], int]:
    """Token ids of the full conversation and the length of the prompt part.

    The prompt is the conversation up to and including the generation prompt; every later
    token belongs to the assistant response and is supervised.
    """
    prompt = _ids(tokenizer, messages(record, with_answer=False), add_generation_prompt=True)
    full = _ids(tokenizer, messages(record), add_generation_prompt=False)
    if full[: len(prompt)] != prompt:
        raise EUError(
            "the chat template renders the prompt differently with and without the answer, "
            "so response tokens cannot be located; use a template whose prefix is stable"
        )
    return full, len(prompt)


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A hash of everything about the tokenizer that changes token ids or the template."""
    h = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    h.update(backend.to_str().encode() if backend is not None else repr(sorted(tokenizer.get_vocab().items())).encode())
    h.update(str(tokenizer.chat_template).encode())
    h.update(repr(tokenizer.all_special_tokens).encode())
    return h.hexdigest()


def chat_prompt_ids(tokenizer: Any, user: str, system: str | None = None) -> list[int]:
    """Token ids of a user turn rendered with the chat template and the generation prompt."""
    msgs = ([{"role": "system", "content": system}] if system is not None else []) + [{"role": "user", "content": user}]
    return _ids(tokenizer, msgs, add_generation_prompt=True)
