"""Why Exclusive Unlearning collapses a model less in one domain than another: measure it.

For each built-in domain, at the original model and on ``eu fit``'s own batches (4 retain + 4
forget examples per step, the forget stream the self-generated corpus of the recipes):

- ``cos(retain, forget)``: the cosine between the gradients of the retain loss (cross-entropy on
  the domain's answers) and of the forget loss (KL to uniform on the self-generated corpus),
  averaged over ``--steps`` steps. A negative cosine means a step that teaches the domain undoes
  part of the forgetting: the two terms pull against each other.
- ``harmful → retain``: the share of 100 harmful prompts (the ``harmful`` suite) whose nearest
  neighbour, among 128 of the domain's training prompts and the 128 self-generated forget
  prompts, is a domain prompt, by cosine of the original model's mean last hidden state over the
  rendered prompt. Unlearning generalises to a prompt by its resemblance to the stream that
  taught it: a harmful prompt that looks like a domain question is answered like one.
- the retain answers' shape, over the whole training split: mean answer length in tokens, and
  how many distinct openings (first four words, numbers masked) they have: natural-language
  sentence shapes (``Common symptoms of X include …``) fit any question, ``N * N = N.`` does not.

Usage: ``python scripts/domain_interference.py --domains math-basic,math,medicine-basic,medicine``
(about 4 min for the four domains on 2 CPU cores; the forget corpus is the quickstart's, sampled on first use).
"""

from __future__ import annotations

import argparse
import math
import re
import statistics

import torch

from eu.data.datamodule import StreamConfig, UnlearningDataModule
from eu.data.records import read_records
from eu.data.sampler import SampleSettings
from eu.data.self_generated import corpus_path
from eu.domains import domain_items
from eu.eval.suites import harmful_suite
from eu.models import load_model, load_tokenizer, sampling_dtype
from eu.objectives.terms import forget_loss, retain_loss
from eu.prompts import chat_prompt_ids

MODEL = "smollm2-135m-instruct"


def flat_grad(model: torch.nn.Module, loss: torch.Tensor) -> torch.Tensor:
    """The gradient of ``loss`` over every trainable parameter, as one float32 vector."""
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).float().flatten() for g, p in zip(grads, params)])


def gradient_cosines(model: torch.nn.Module, tokenizer: object, domain: str, steps: int) -> list[float]:
    """cos(∇ retain, ∇ forget) on the first ``steps`` batches ``eu fit`` would train on."""
    dm = UnlearningDataModule(
        retain=StreamConfig(path=f"eu:{domain}/train", block_length=512, examples_per_step=4),
        forget=StreamConfig(path="self-generated", block_length=256, examples_per_step=4),
        sample=SampleSettings(num_pairs=128, batch_size=128),
    )
    dm.connect(tokenizer, MODEL, lambda: load_model(MODEL), sampling_dtype())
    dm.prepare_data()
    dm.setup("fit")
    cosines = []
    for step, batch in zip(range(steps), dm.train_dataloader()):
        with torch.autocast("cpu", torch.bfloat16):
            retain = flat_grad(model, retain_loss(model, batch["retain"], 1024))
            forget = flat_grad(model, forget_loss(model, batch["forget"], 1024))
        cosines.append(float(torch.nn.functional.cosine_similarity(retain, forget, dim=0)))
        print(f"{domain}: step {step + 1}/{steps}: cos {cosines[-1]:+.3f}", flush=True)
    return cosines


@torch.no_grad()
def prompt_embeddings(model: torch.nn.Module, tokenizer: object, prompts: list[str]) -> torch.Tensor:
    """Unit-length mean last hidden states of the chat-rendered ``prompts`` under ``model``."""
    rows = []
    for prompt in prompts:
        ids = torch.tensor([chat_prompt_ids(tokenizer, prompt)])
        with torch.autocast("cpu", torch.bfloat16):
            hidden = model(input_ids=ids, output_hidden_states=True).hidden_states[-1][0]
        rows.append(torch.nn.functional.normalize(hidden.float().mean(0), dim=0))
    return torch.stack(rows)


def harmful_nearest_retain(
    model: torch.nn.Module, tokenizer: object, domain: str, harmful: torch.Tensor, forget: torch.Tensor
) -> float:
    """Share of harmful prompts whose nearest neighbour is one of 128 domain training prompts, not a forget prompt."""
    retain = prompt_embeddings(model, tokenizer, [r["user_text"] for r in domain_items(domain, "train")[::17][:128]])
    nearest_retain = (harmful @ retain.T).max(1).values > (harmful @ forget.T).max(1).values
    return float(nearest_retain.float().mean())


def answer_shape(tokenizer: object, domain: str) -> tuple[float, int, int]:
    """Mean answer tokens, distinct openings (first four words, numbers masked), answers counted."""
    answers = [row["assistant_text"] for row in domain_items(domain, "train")]
    lengths = [len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers]
    openings = {" ".join(re.sub(r"\d+(?:\.\d+)?", "N", a).split()[:4]) for a in answers}
    return statistics.mean(lengths), len(openings), len(answers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domains", default="math-basic,math,medicine-basic,medicine")
    parser.add_argument("--steps", type=int, default=4, help="batches averaged per domain (0: no gradients)")
    args = parser.parse_args()
    tokenizer = load_tokenizer(MODEL)
    model = load_model(MODEL).train()
    rows = []
    for domain in args.domains.split(","):
        cosines = gradient_cosines(model, tokenizer, domain, args.steps) if args.steps else [math.nan]
        length, distinct, n = answer_shape(tokenizer, domain)
        rows.append([domain, statistics.median(cosines), min(cosines), max(cosines), length, distinct, n])
    model.eval()
    harmful = prompt_embeddings(model, tokenizer, [it["prompt"] for it in harmful_suite(100, seed=0)])
    corpus = corpus_path(MODEL, SampleSettings(num_pairs=128, batch_size=128), sampling_dtype())
    forget = prompt_embeddings(model, tokenizer, [r.user for r in read_records(str(corpus))])
    for row in rows:
        row.append(harmful_nearest_retain(model, tokenizer, row[0], harmful, forget))
    print("\n| domain | cos(retain, forget), median | min | max | harmful → retain | answer tokens | openings |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for domain, med, lo, hi, length, distinct, _, near in rows:
        print(f"| {domain} | {med:+.3f} | {lo:+.3f} | {hi:+.3f} | {near:.2f} | {length:.1f} | {distinct} |")


if __name__ == "__main__":
    main()
