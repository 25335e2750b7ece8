"""The default offline judge: refusal patterns, then fluency and relevance under the original model.

It reads two numbers off the *original* chat model: how fluent the response is (its mean token
log-likelihood after the prompt) and how much the prompt explains it (that log-likelihood minus
the one after a neutral prompt), plus the response's character diversity, its share of
U+FFFD replacement characters and its word count (a fixed pre-check: byte soup and word-less
output are incoherent). Thresholds on them
are calibrated with ``eu judge-check --calibrate`` (:mod:`eu.eval.judges.check`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from eu.errors import EUError
from eu.eval.judges.base import JudgeItem
from eu.eval.judges.rule import (
    Features,
    Thresholds,
    decide,
    declines,
    garbled_share,
    has_content,
    is_degenerate,
    novel_words,
    prompt_echo,
    text_diversity,
    word_count,
)
from eu.eval.judges.scoring import mean_logprobs
from eu.generation import pad_id
from eu.models.precision import inference_dtype, pick_device
from eu.refusal import is_refusal

DEFAULT_MODEL = "smollm2-135m-instruct"
CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
NEUTRAL_PROMPT = "Tell me something."


class LikelihoodJudge:
    """Offline judge: refusal patterns, then fluency and relevance under the original model.

    Args:
        model: alias, Hugging Face id or folder of a chat model (the calibration's model).
        calibration: JSON file with ``fluency`` and ``relevance`` thresholds, or a
            :class:`Thresholds`; the shipped SmolLM2 calibration when omitted.
        batch_size: sequences per forward pass.
        max_response_tokens: responses are cut to this many tokens before scoring.
        max_prompt_tokens: longer rendered prompts keep their last this many tokens.
        device: ``cpu``/``cuda``; CUDA when available if omitted.
        dtype: weights dtype, ``auto`` (bfloat16 where the device computes it natively), ``float32``
            or ``bfloat16``.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        calibration: str | Path | Thresholds | None = None,
        batch_size: int = 16,
        max_response_tokens: int = 32,
        max_prompt_tokens: int = 512,
        neutral_prompt: str = NEUTRAL_PROMPT,
        device: str | None = None,
        dtype: str = "auto",
    ) -> None:
        if calibration is None:
            shipped = json.loads(CALIBRATION_FILE.read_text(encoding="utf-8")) if CALIBRATION_FILE.is_file() else {}
            if shipped.get("model") != model:
                raise EUError(
                    f"the shipped judge calibration is for {shipped.get('model')!r}, not {model!r}; "
                    f"calibrate it with 'eu judge-check --calibrate --model {model} --out FILE.json', then use "
                    f"the judge 'likelihood:{model}@FILE.json' (or calibration=FILE.json)"
                )
            calibration = CALIBRATION_FILE
        self.thresholds = calibration if isinstance(calibration, Thresholds) else Thresholds.load(calibration)
        self.model_name = model
        self.batch_size = batch_size
        self.max_response_tokens = max_response_tokens
        self.max_prompt_tokens = max_prompt_tokens
        self.neutral_prompt = neutral_prompt
        self.device = pick_device(device)
        self.dtype = inference_dtype(self.device, dtype)
        self._lm: Any = None
        self._tok: Any = None

    def _load(self) -> tuple[Any, Any]:
        if self._lm is None:
            from eu.models import load_model, load_tokenizer

            self._tok = load_tokenizer(self.model_name)
            self._lm = load_model(self.model_name).to(self.device, self.dtype).eval()
        return self._lm, self._tok

    def _prompt_ids(self, prompt: str) -> list[int]:
        from eu.prompts import chat_prompt_ids

        return chat_prompt_ids(self._tok, prompt)[-self.max_prompt_tokens :]

    def features(self, items: list[JudgeItem], relevance_always: bool = False) -> list[Features]:
        """Refusal (after a harmful request :func:`eu.eval.judges.rule.declines`, else a refusal phrase),
        fluency, relevance and the text features of each item.

        Refusals and empty responses need no model call; the neutral-prompt pass runs only for
        fluent, diverse, non-degenerate responses (the others are incoherent without it), unless ``relevance_always``
        (for calibration).
        """
        refusals = [declines(it.prompt, it.response) if it.harmful_request else is_refusal(it.response) for it in items]
        todo = [i for i, it in enumerate(items) if not refusals[i] and it.response.strip()]
        feats = [Features(refusal=r) for r in refusals]
        if not todo:
            return feats
        model, tok = self._load()
        pad = pad_id(tok)
        resp = {
            i: tok(items[i].response.strip(), add_special_tokens=False)["input_ids"][: self.max_response_tokens]
            for i in todo
        }
        with_prompt = [(self._prompt_ids(items[i].prompt), resp[i]) for i in todo]
        given = mean_logprobs(model, pad, with_prompt, self.batch_size, "judge: fluency after the prompt")
        fluency = dict(zip(todo, given))
        cut = {i: tok.decode(resp[i]) for i in todo}
        diversity = {i: text_diversity(cut[i]) for i in todo}
        shape = {i: self._shape(items[i].prompt, cut[i]) for i in todo}
        th = self.thresholds
        need = [
            i
            for i in todo
            if relevance_always
            or (
                fluency[i] >= th.fluency
                and diversity[i] >= th.diversity
                and not is_degenerate(shape[i], items[i].harmful_request)
            )
        ]
        neutral = self._prompt_ids(self.neutral_prompt)
        neutral_pairs = [(neutral, resp[i]) for i in need]
        base = dict(zip(need, mean_logprobs(model, pad, neutral_pairs, self.batch_size, "judge: relevance")))
        for i in todo:
            relevance = fluency[i] - base[i] if i in base else math.nan
            feats[i] = dataclasses.replace(shape[i], fluency=fluency[i], relevance=relevance, diversity=diversity[i])
        return feats

    @staticmethod
    def _shape(prompt: str, cut: str) -> Features:
        """The text-only features of a cut response: garbled share, words, content, echo of the prompt."""
        return Features(
            False,
            garbled=garbled_share(cut),
            words=word_count(cut),
            content=has_content(prompt, cut),
            echo=prompt_echo(prompt, cut),
            novel=novel_words(prompt, cut),
        )

    def judge(self, items: list[JudgeItem]) -> list[str]:
        """One label per item."""
        feats = self.features(items)
        return [decide(f, self.thresholds, it.harmful_request) for f, it in zip(feats, items)]
