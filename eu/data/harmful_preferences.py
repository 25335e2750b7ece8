"""Built-in preference data for the DPO baseline: a refusal chosen over a harmful answer.

``eu:harmful/preferences`` pairs each prompt of ``eu:harmful/answers`` (pyrit's many-shot answers
graded harmful) with a refusal as ``chosen`` and the harmful answer as ``rejected``. Refusals are
written in varied forms so that DPO learns to refuse rather than to print one string: each prompt
gets one of :data:`REFUSALS` (or, when it is an instruction such as "Write ...", also one of
:data:`TASK_REFUSALS`, which name the task), chosen by a hash of the prompt and the seed, so the
choice does not depend on the order of the data or on the Python version.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from eu.data.harmful_answers import cached_jsonl, harmful_examples
from eu.io import cache_dir

VERSION = "2"  # 2: prompts of the evaluation suites held out (eu.data.harmful_answers)
"""Raise when the templates or the rows change, so that cached files are rebuilt."""

REFUSALS = (
    "I'm sorry, but I can't help with that.",
    "I can't assist with this request.",
    "No, I won't provide that. It could cause real harm.",
    "I'm not able to help with this. Is there something else I can do for you?",
    "Sorry, that's not something I can help with.",
    "I must decline this request because it could be used to hurt people.",
    "I won't help with that, as it could put people's safety at risk. I'm happy to help with something else.",
    "That request asks for something harmful, so I can't fulfil it.",
    "I'm unable to provide this. It could facilitate harm or illegal activity.",
    "Unfortunately, I can't do that. Let me know if there's a safer topic I can help with.",
    "I'd rather not help with this one: it could lead to serious harm.",
    "This isn't something I can assist with. If you have another question, feel free to ask.",
    "I apologise, but I cannot comply with this request.",
    "My answer has to be no. Providing this could endanger others.",
)
"""Refusals that fit any prompt."""

TASK_REFUSALS = (
    "I won't {task}. Doing so could put people at risk, so I have to decline.",
    "Sorry, I can't {task}. If you're facing a difficult situation, I can help you find legitimate resources.",
    "I'm not going to {task}. That could cause serious harm to others.",
    "You've asked me to {task}, and that's something I can't help with.",
    "I have to decline: I can't {task}, because it could be used to hurt people.",
)
"""Refusals that name the task (``{task}``: the request as a lower-case instruction)."""

# First words of instructions that read well after "I won't ...".
INSTRUCTION_VERBS = frozenset(
    "add brainstorm choose come compose convert convince create describe design determine develop devise "
    "draft edit explain generate give list make modify outline plan provide suggest think transform use write "
    "slightly minimally intelligently".split()
)
LEAD_IN = re.compile(r"^(given|based on|considering|in|using)\b[^,]{0,200},\s*", re.IGNORECASE)
CLAUSE_END = re.compile(r"[,;]|(?<![A-Z])[.?!](?=\s|$)")  # not the dot of an initial ("E. coli")
DANGLING = frozenset("a an and for from how in of on or so that the this to with".split())
TASK_WORDS = 16


def task_phrase(prompt: str) -> str | None:
    """The request's first clause as an instruction to follow "I won't", or ``None`` when it is
    not an instruction or longer than 16 words (it is never cut mid-clause)."""
    lines = prompt.strip().splitlines()
    words = CLAUSE_END.split(LEAD_IN.sub("", lines[0] if lines else ""), maxsplit=1)[0].split()
    while words and words[-1].lower() in DANGLING:
        words.pop()
    text = " ".join(words)
    if not 2 <= len(words) <= TASK_WORDS or words[0].lower() not in INSTRUCTION_VERBS or text.count('"') % 2:
        return None
    return words[0].lower() + text[len(words[0]) :]


def refusal(prompt: str, seed: int = 0) -> str:
    """A refusal of ``prompt``, picked from the templates by a hash of ``(seed, prompt)``."""
    task = task_phrase(prompt)
    templates = REFUSALS + (tuple(t.format(task=task) for t in TASK_REFUSALS) if task else ())
    digest = hashlib.sha256(f"{seed}\0{prompt}".encode()).digest()
    return templates[int.from_bytes(digest[:8], "big") % len(templates)]


def preference_rows(examples: list[dict[str, Any]], seed: int = 0) -> list[dict[str, str]]:
    """``prompt``/``chosen``/``rejected`` rows: a refusal chosen over each harmful answer (blank turns left out)."""
    pairs = ((str(ex["user"]).strip(), str(ex["assistant"]).strip()) for ex in examples)
    return [{"prompt": p, "chosen": refusal(p, seed), "rejected": a} for p, a in pairs if p and a]


def prepare(out_dir: Path | None = None, source: str | Path | None = None) -> Path:
    """Write ``harmful-preferences.jsonl`` into the cache (once) and return its path."""
    out_dir = Path(out_dir) if out_dir else cache_dir() / "forget" / f"harmful-preferences-v{VERSION}"
    return cached_jsonl(out_dir / "harmful-preferences.jsonl", lambda: preference_rows(harmful_examples(source)))
