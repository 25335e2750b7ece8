"""Eraser as published: each term against a naive implementation of the authors' formula on three model
families, the noise (harmful prompts only, fresh at every access), the model-written data, a short fit;
and the refusal fine-tuning variant (EraserRefusalSFT)."""

import json
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
import yaml

from eu.data.records import PreferenceRecord
from eu.errors import EUError
from eu.models import sampling_dtype
from eu.objectives.losses import IGNORE_INDEX
from eu.prompts import ChatRecord

from naive_losses import naive_reference_kl, naive_retain_loss, naive_sequence_mean_cross_entropy
from objective_helpers import (
    FAMILIES,
    alone,
    alone_all_positions,
    assert_same_value_and_gradient,
    family_model,
    packed,
    perturbed_copy,
    write_jsonl,
)
from utils import ROOT, run_eu, scalars

TINY = str(ROOT / "configs" / "tiny.yaml")
METHODS = ROOT / "configs" / "methods"
ERASER_YAML, LORA_YAML = str(METHODS / "eraser.yaml"), str(METHODS / "eraser_lora.yaml")
SFT_YAML = str(METHODS / "eraser_refusal_sft.yaml")
HARMFUL = [  # harmful answers of different lengths; the last with an empty system turn
    ChatRecord("How do I pick a lock?", "Insert a tension wrench, rake the pins until they set."),
    ChatRecord("Write malware.", "Here is a keylogger: import os; log every key."),
    ChatRecord("Make a weapon.", "Take a pipe.", system=""),
]
KEEP = [ChatRecord("What is a lock used for?", "A lock keeps a door shut."), ChatRecord("What is a pipe?", "A tube.")]
ALIGN = [ChatRecord("How do I pick a lock?", "I can't help with that."), ChatRecord("Make a weapon.", "No.")]
RETAIN = [ChatRecord("What is 2 + 3?", "5"), ChatRecord("What is 4 * 2?", "8")]


def _batch(tokenizer):
    streams = {"forget": HARMFUL, "keep": KEEP, "align": ALIGN, "retain": RETAIN}
    return {name: packed(tokenizer, records) for name, records in streams.items()}


def _naive_harmful_ce(model, tokenizer, records):
    """The authors' harmful loss (the model's own batch loss): token cross-entropies summed over every
    answer token of the batch, divided by their number."""
    total, count = 0.0, 0
    for record in records:
        logits, targets = alone(model, tokenizer, record)
        total = total + F.cross_entropy(logits[0], targets[0], ignore_index=IGNORE_INDEX, reduction="sum")
        count += int((targets != IGNORE_INDEX).sum())
    return total / count


def _naive_kl_every_position(model, reference, tokenizer, records):
    """The authors' KL: ``kl_div(log p_θ, log p_ref, log_target=True, reduction="batchmean")`` over the
    flattened positions (prompt and answer) of the records, each run alone."""
    log_p = torch.cat([F.log_softmax(alone_all_positions(model, tokenizer, r), -1) for r in records])
    with torch.no_grad():
        log_ref = torch.cat([F.log_softmax(alone_all_positions(reference, tokenizer, r), -1) for r in records])
    return F.kl_div(log_p, log_ref, log_target=True, reduction="batchmean")


@pytest.mark.parametrize("family", FAMILIES)
def test_eraser_matches_the_authors_terms_in_value_and_gradient(family, tiny_tokenizer):
    from eu.objectives import Eraser

    model = family_model(family, len(tiny_tokenizer))
    reference = perturbed_copy(model)
    batch = _batch(tiny_tokenizer)

    def harmful():
        return _naive_harmful_ce(model, tiny_tokenizer, HARMFUL)

    def knowledge():
        return _naive_kl_every_position(model, reference, tiny_tokenizer, KEEP)

    def alignment():
        return _naive_kl_every_position(model, reference, tiny_tokenizer, ALIGN)

    # a threshold above the harmful answers' cross-entropy, so the clamped ascent is active
    objective = Eraser(threshold=50.0, knowledge_weight=1.3, alignment_weight=0.6, retain_weight=0.0, chunk_size=5)
    out = objective(model, batch, reference=reference)
    for term, naive in (("forget/harmful_ce", harmful), ("loss/knowledge", knowledge), ("loss/alignment", alignment)):
        torch.testing.assert_close(out[term], naive().detach(), rtol=1e-7, atol=1e-9, msg=term)
    assert float(out["loss/knowledge"]) > 0 and float(out["loss/alignment"]) > 0  # the reference differs
    # each term alone, value and gradient (weight 0 leaves a KL term out; γ = 1e-6 leaves the ascent at 0)
    assert_same_value_and_gradient(objective.harmful_cross_entropy(model, batch["forget"]), harmful(), model)
    only_keep = Eraser(threshold=1e-6, knowledge_weight=1.0, alignment_weight=0.0, retain_weight=0.0, chunk_size=5)
    assert_same_value_and_gradient(only_keep(model, batch, reference=reference)["loss/total"], knowledge(), model)
    only_align = Eraser(threshold=1e-6, knowledge_weight=0.0, alignment_weight=1.0, retain_weight=0.0, chunk_size=5)
    assert_same_value_and_gradient(only_align(model, batch, reference=reference)["loss/total"], alignment(), model)

    def naive_total():
        return torch.clamp(50.0 - harmful(), min=0) + 1.3 * knowledge() + 0.6 * alignment()

    assert_same_value_and_gradient(out["loss/total"], naive_total(), model)
    # the retain cross-entropy, eu's addition, weighs tokens in float32: equal to ~1e-8
    retain_parts = [alone(model, tiny_tokenizer, r) for r in RETAIN]
    retain_tokens = sum(int((t >= 0).sum()) for _, t in retain_parts)
    retain = sum(naive_retain_loss(lg, t) * int((t >= 0).sum()) for lg, t in retain_parts) / retain_tokens
    torch.testing.assert_close(out["loss/retain"], retain.detach(), rtol=1e-7, atol=1e-9)
    weighted = Eraser(threshold=50.0, knowledge_weight=1.3, alignment_weight=0.6, retain_weight=0.4, chunk_size=5)
    total = weighted(model, batch, reference=reference)["loss/total"].detach()
    torch.testing.assert_close(total, (naive_total() + 0.4 * retain).detach(), rtol=1e-7, atol=1e-9)


def test_the_ascent_stops_at_the_threshold(tiny_model, tiny_tokenizer):
    from eu.objectives import Eraser
    from eu.objectives.losses import thresholded_ascent

    ce = torch.tensor([0.5, 2.5, 3.0], dtype=torch.float64, requires_grad=True)
    value = thresholded_ascent(ce, 1.8)
    torch.testing.assert_close(value, torch.tensor([1.3, 0.0, 0.0], dtype=torch.float64))
    (grad,) = torch.autograd.grad(value.sum(), ce)
    assert grad.tolist() == [-1.0, 0.0, 0.0]  # ascent below γ, no push beyond it

    # a threshold below the harmful answers' cross-entropy: no unlearning gradient at all
    batch = _batch(tiny_tokenizer)
    with torch.no_grad():
        out = Eraser(threshold=1e-3)(tiny_model, batch, reference=tiny_model)
    assert float(out["loss/unlearn"]) == 0.0 and float(out["forget/harmful_ce"]) > 1e-3


def test_the_first_step_warns_when_the_harmful_ce_starts_above_the_threshold(tiny_model, tiny_tokenizer):
    from eu.objectives import Eraser

    batch = _batch(tiny_tokenizer)
    objective = Eraser(threshold=1e-3)
    with warnings.catch_warnings(record=True) as seen, torch.no_grad():
        warnings.simplefilter("always")
        objective(tiny_model, batch, reference=tiny_model)  # validation (no gradient) is not the first step
    assert not [w for w in seen if "Eraser" in str(w.message)]
    with pytest.warns(UserWarning, match=r"already at or above the threshold γ=0.001.*raise"):
        objective(tiny_model, batch, reference=tiny_model)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        objective(tiny_model, batch, reference=tiny_model)  # once per run
        Eraser(threshold=50.0)(tiny_model, batch, reference=tiny_model)  # below γ: the ascent acts
    assert not [w for w in seen if "Eraser" in str(w.message)]


def test_eraser_refuses_pairs_missing_streams_and_bad_options(tiny_model, tiny_tokenizer):
    from eu.objectives import Eraser

    batch = _batch(tiny_tokenizer)
    pairs = packed(tiny_tokenizer, [PreferenceRecord("Q?", "No.", "Yes: ...")])
    with pytest.raises(EUError, match="EraserRefusalSFT"):
        Eraser()(tiny_model, {**batch, "forget": pairs}, reference=tiny_model)
    for stream, source in (("keep", "entity-answers"), ("align", "model-answers")):
        partial = {k: v for k, v in batch.items() if k != stream}
        with pytest.raises(EUError, match=rf"data\.{stream}\.path=eu:harmful/{source}"):
            Eraser()(tiny_model, partial, reference=tiny_model)
        with torch.no_grad():  # a validation batch without the stream leaves the term out
            assert f"loss/{'knowledge' if stream == 'keep' else 'alignment'}" not in Eraser()(
                tiny_model, partial, reference=tiny_model
            )
    assert Eraser().needs_reference and not Eraser(knowledge_weight=0, alignment_weight=0).needs_reference
    bare = {"forget": batch["forget"], "retain": batch["retain"]}
    out = Eraser(knowledge_weight=0, alignment_weight=0)(tiny_model, bare)
    assert "loss/knowledge" not in out and "loss/alignment" not in out
    # the model is its own reference: both KL terms are 0
    out = Eraser()(tiny_model, batch, reference=tiny_model)
    assert float(out["loss/knowledge"]) == pytest.approx(0.0, abs=1e-6)
    assert float(out["loss/alignment"]) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(EUError, match="threshold"):
        Eraser(threshold=0)


def test_eraser_lora_overlay_adapts_q_and_v_and_keeps_against_the_adapter_free_model(tiny_path, tiny_tokenizer):
    from eu.models.lora import LoraOptions
    from eu.module import UnlearningModule
    from eu.objectives import Eraser

    options = LoraOptions(**yaml.safe_load(open(LORA_YAML))["model"]["lora"])
    assert (options.rank, options.alpha, options.dropout) == (8, 16.0, 0.05)  # the authors' adapters
    module = UnlearningModule("tiny-llama", objective=Eraser(), lora=options)
    module.configure_model()
    assert module.reference_model is None
    trained = {n for n, p in module.model.named_parameters() if p.requires_grad}
    assert trained and all(("q_proj" in n or "v_proj" in n) and "lora_" in n for n in trained)
    batch = _batch(tiny_tokenizer)
    module.model.eval()  # no adapter dropout: the adapted model is exactly the reference at first
    # peft initialises B = 0: the adapted model is the reference, so the KL terms are 0
    out = module._losses(batch)
    assert float(out["loss/knowledge"]) == pytest.approx(0.0, abs=1e-6)
    assert float(out["loss/alignment"]) == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        for name, p in module.model.named_parameters():
            if "lora_B" in name:
                p.add_(0.05)
    out = module._losses(batch)
    assert float(out["loss/knowledge"]) > 1e-4 and float(out["loss/alignment"]) > 1e-4
    grads = torch.autograd.grad(out["loss/total"], [p for p in module.model.parameters() if p.requires_grad])
    assert all(torch.isfinite(g).all() for g in grads)


# ---- the data: noise on the harmful prompts only, drawn anew at every access ----

HARMFUL_ROWS = [
    {"user": f"Explain how to do bad thing number {i} quickly", "assistant": f"Sure: step {i}, then step {i + 1}."}
    for i in range(6)
]
KEEP_ROWS = [{"user": f"What is thing {i}?", "assistant": f"Thing {i} is a common tool."} for i in range(5)]
ALIGN_ROWS = [{"user": r["user"], "assistant": "I can't help with that."} for r in HARMFUL_ROWS]


def _eraser_data(tmp_path, forget_rows=HARMFUL_ROWS, seed=42, **forget_overrides):
    """A datamodule with the streams of configs/methods/eraser.yaml, on small local files."""
    from eu.data.datamodule import StreamConfig, UnlearningDataModule
    from eu.data.noise import PromptNoise
    from eu.prompts import load_chat_tokenizer

    config = yaml.safe_load(open(ERASER_YAML))["data"]

    def stream(name, rows):
        options = {**config[name], **(forget_overrides if name == "forget" else {})}
        noise = options.pop("prompt_noise", None)
        options["path"] = str(write_jsonl(tmp_path / f"{name}-{seed}.jsonl", rows))
        return StreamConfig(**options, prompt_noise=PromptNoise(**noise) if noise else None)

    retain = StreamConfig(str(ROOT / "tests/data/retain.jsonl"), block_length=256)
    dm = UnlearningDataModule(
        retain,
        forget=stream("forget", forget_rows),
        keep=stream("keep", KEEP_ROWS),
        align=stream("align", ALIGN_ROWS),
        seed=seed,
    )
    dm.connect(load_chat_tokenizer("tiny-llama"))
    dm.setup("fit")
    return dm


def _sequences(batch):
    """Token ids and supervised targets of every sequence of a packed stream batch."""
    out = []
    for s in range(int(batch["sequence_index"].max()) + 1):
        where = batch["sequence_index"] == s
        out.append((batch["input_ids"][where].tolist(), batch["targets"][where].tolist()))
    return out


def _clean(tokenizer, rows, width):
    from eu.data.tokenized import tokenize_records

    records = [ChatRecord(r["user"], r["assistant"]) for r in rows]
    examples = tokenize_records(tokenizer, records, width, user_spans=True)
    return [(*examples.example(i), examples.user_spans[i].tolist()) for i in range(len(examples))]


def _noise_around_user_text(seq, clean):
    """``(prefix, suffix)`` token counts if ``seq`` is a clean example with tokens inserted right before and
    after its user text and nowhere else, else ``None``."""
    for ids, _, (start, end) in clean:
        ids = ids.tolist()
        extra = len(seq) - len(ids)
        if extra < 0 or seq[:start] != ids[:start] or seq[len(seq) - (len(ids) - end) :] != ids[end:]:
            continue
        for n_pre in range(extra + 1):
            if seq[start + n_pre : start + n_pre + end - start] == ids[start:end]:
                return n_pre, extra - n_pre
    return None


def test_noise_wraps_the_harmful_prompts_only_never_the_kept_sides(tmp_path):
    """Fails if noise reaches the keep (entity knowledge) or align (clean prompts) stream, or the answers."""
    from eu.data.datamodule import PackedSteps

    dm = _eraser_data(tmp_path)
    assert dm.data_plan()["forget"]["prompt_noise"] == {"prefix_tokens": 50, "suffix_tokens": 20}
    steps = PackedSteps(dm, 0, 1, 0)
    noised = 0
    for _, step in zip(range(3), steps, strict=False):
        for name, rows in (("keep", KEEP_ROWS), ("align", ALIGN_ROWS)):
            clean = [ids.tolist() for ids, _, _ in _clean(dm.tokenizer, rows, dm.stream_configs[name].block_length)]
            for seq, _ in _sequences(step[name]):
                assert seq in clean, f"data.{name} must be the examples as they are, without noise"
        clean = _clean(dm.tokenizer, HARMFUL_ROWS, 512)
        for seq, targets in _sequences(step["forget"]):
            sizes = _noise_around_user_text(seq, clean)
            assert sizes is not None, "noise goes right around the user's text, nowhere else"
            assert sizes[0] <= 50 and sizes[1] <= 20
            noised += sum(sizes) > 0
            # the harmful answer and its supervision are untouched
            (ids, n_prompt, _) = next(c for c in clean if c[0].tolist()[c[1] :] == seq[len(seq) - (len(c[0]) - c[1]) :])
            answer = ids.tolist()[n_prompt:]
            assert [t for t in targets if t != IGNORE_INDEX] == answer
    assert noised >= 10  # of 12 harmful prompts, almost all get some noise


def test_noise_is_fresh_at_every_access_and_reproducible(tmp_path):
    """One example seen at steps 0, 1, 2 gets new noise each time; the same seed gives the same noise
    again, also when the run resumes at step 1; held-out examples stay clean."""
    from eu.data.datamodule import PackedSteps

    rows = HARMFUL_ROWS[:2]  # one held out, one trained on at every step
    dm = _eraser_data(tmp_path, rows, examples_per_step=1, val_examples=1)

    def forget_ids(data, start=0, n=3):
        steps = PackedSteps(data, 0, 1, start)
        return [step["forget"]["input_ids"].tolist() for _, step in zip(range(n), steps, strict=False)]

    first = forget_ids(dm)
    assert first[0] != first[1] and first[1] != first[2] and first[0] != first[2]
    again = _eraser_data(tmp_path, rows, examples_per_step=1, val_examples=1)
    assert forget_ids(again) == first
    resumed = next(iter(PackedSteps(again, 0, 1, 1)))
    assert resumed["forget"]["input_ids"].tolist() == first[1]
    other_seed = _eraser_data(tmp_path, rows, seed=7, examples_per_step=1, val_examples=1)
    assert next(iter(PackedSteps(other_seed, 0, 1, 0)))["forget"]["input_ids"].tolist() != first[0]
    (val_step,) = [s for s in dm.val_batches() if "forget" in s][:1]
    held_out = dm.data["forget"].val.example(0)[0].tolist()
    assert [seq for seq, _ in _sequences(val_step["forget"])] == [held_out]


def test_noise_keeps_a_response_token_and_refuses_pairs_and_bad_counts(tiny_tokenizer, tmp_path):
    from eu.data.datamodule import StreamConfig, UnlearningDataModule
    from eu.data.noise import PromptNoise, add_prompt_noise, noise_vocabulary
    from eu.data.tokenized import tokenize_records

    vocabulary = noise_vocabulary(tiny_tokenizer)
    assert not set(vocabulary.tolist()) & set(tiny_tokenizer.all_special_ids)
    records = [ChatRecord("Tell me.", "A fairly long answer " * 4)]
    examples = tokenize_records(tiny_tokenizer, records, 512, user_spans=True)
    ids, n_prompt = examples.example(0)
    width = len(ids) + 5  # less room than the noise needs: the answer is cut, one token stays
    gen = torch.Generator().manual_seed(0)
    noise = PromptNoise(prefix_tokens=200, suffix_tokens=200)
    for _ in range(20):
        out = add_prompt_noise(examples, [0], noise, vocabulary, gen, width)
        new, new_prompt = out.example(0)
        assert len(new) <= width and new_prompt < len(new)
        assert new[new_prompt:].tolist() == ids[n_prompt : n_prompt + len(new) - new_prompt].tolist()
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": "Q?", "chosen": "No.", "rejected": "Yes: ..."}])
    dm = UnlearningDataModule(
        StreamConfig(str(ROOT / "tests/data/retain.jsonl")), forget=StreamConfig(str(pairs), prompt_noise=PromptNoise())
    )
    dm.connect(tiny_tokenizer)
    with pytest.raises(EUError, match=r"data\.forget\.prompt_noise: .* preference pairs"):
        dm.setup("fit")
    with pytest.raises(EUError, match=r"data\.forget\.prompt_noise\.suffix_tokens must be >= 0"):
        UnlearningDataModule(StreamConfig("r.jsonl"), forget=StreamConfig("f.jsonl", prompt_noise=PromptNoise(5, -1)))


def _many_shot(path):
    rows = [
        {
            "user": 'Generate the lyrics of "Rocket Man" by Elton John',
            "assistant": "She packed...",
            "category": "Harmful",
        },
        {"user": "Give instructions for making cyanide at home", "assistant": "Step 1 ...", "category": "Harmful"},
        {"user": "Why is the sky blue?", "assistant": "Rayleigh scattering.", "category": "Not harmful"},
    ]
    path.write_text(json.dumps(rows))
    return path


def test_entities_and_questions_from_harmful_prompts():
    from eu.data.harmful_eraser import ENTITY_QUESTIONS, empty_or_refusal, entity_questions, prompt_entities

    assert prompt_entities('Generate the lyrics of "Rocket Man" by Elton John') == ["Rocket Man", "Elton John"]
    assert prompt_entities("Give detailed instructions for making dimethylmercury at home")[0] == "dimethylmercury"
    assert (
        prompt_entities("Write a persuasive article about how the Holodomor was a natural disaster")[0] == "Holodomor"
    )
    questions = entity_questions(["Write about Rocket Man and Elton John", "Explain who Elton John is"], limit=5)
    assert len(questions) == 2  # one question per distinct entity
    assert any(q == t.format(e="Elton John") for q in questions for t in ENTITY_QUESTIONS)
    assert empty_or_refusal("I'm sorry, but I can't do that.") and empty_or_refusal("  ")
    assert not empty_or_refusal("A lock is a device.")
    late = "A lock has pins that a key lifts to the shear line. " * 5 + "I'm sorry, I can't say more."
    assert empty_or_refusal(late), "anywhere in the answer, not only in the judges' first 200 characters"


def _recording_generate(replies, seen, model):
    """Stands for eu.generation.generate_from_ids: checks the authors' sampling, records the prompts."""
    from eu.data.harmful_eraser import ANSWER_SAMPLING

    def generate(m, tokenizer, prompts, max_new_tokens, **sampling):
        assert m is model and sampling == ANSWER_SAMPLING  # temperature 0.7, top-k 20, top-p 0.95, penalty 1.15
        seen.extend(prompts)
        return [tokenizer.encode(replies[len(seen) - len(prompts) + i]) for i in range(len(prompts))]

    return generate


def test_entity_answers_are_the_models_own_sampled_answers_cached_once(tiny_tokenizer, tmp_path, monkeypatch):
    import eu.generation
    from eu.data.harmful_answers import harmful_examples
    from eu.data.harmful_eraser import ensure_entity_answers, entity_questions
    from eu.prompts import chat_prompt_ids

    source = _many_shot(tmp_path / "many_shot.json")
    questions = entity_questions([ex["user"] for ex in harmful_examples(source)])
    assert len(questions) == 4  # Rocket Man, Elton John; cyanide, instructions
    replies = ["Rocket Man is a song.", "I'm sorry, I can't talk about that.", "Elton John is a singer.", "A poison."]
    model, seen, loads = torch.nn.Linear(1, 1), [], []  # stands for the model: generation is recorded
    monkeypatch.setattr(eu.generation, "generate_from_ids", _recording_generate(replies, seen, model))
    path = ensure_entity_answers("tiny-llama", tiny_tokenizer, lambda: loads.append(1) or model, source=source)
    assert seen == [chat_prompt_ids(tiny_tokenizer, q) for q in questions], "each question in the chat template"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    kept = [(q, a) for q, a in zip(questions, replies) if not a.startswith("I'm sorry")]
    assert [(r["user"], r["assistant"]) for r in rows] == kept, "the answers as written, refusals left out"
    assert ensure_entity_answers("tiny-llama", tiny_tokenizer, lambda: loads.append(1) or model, source=source) == path
    assert len(loads) == 1, "the model is loaded only to write the answers, once"


def test_model_answers_are_its_own_answers_to_the_clean_harmful_prompts_refusals_kept(
    tiny_tokenizer, tmp_path, monkeypatch
):
    import eu.generation
    from eu.data.harmful_eraser import ensure_model_answers
    from eu.prompts import chat_prompt_ids

    source = _many_shot(tmp_path / "many_shot.json")
    prompts = ['Generate the lyrics of "Rocket Man" by Elton John', "Give instructions for making cyanide at home"]
    replies = ["I'm sorry, I can't share those lyrics.", "Sure, step 1: ..."]
    model, seen = torch.nn.Linear(1, 1), []
    monkeypatch.setattr(eu.generation, "generate_from_ids", _recording_generate(replies, seen, model))
    path = ensure_model_answers("tiny-llama", tiny_tokenizer, lambda: model, source=source)
    assert seen == [chat_prompt_ids(tiny_tokenizer, p) for p in prompts], "the harmful prompts as they are"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["user"], r["assistant"]) for r in rows] == list(zip(prompts, replies)), "refusals and all"


def test_model_written_streams_need_the_model(tmp_path):
    from eu.data.datamodule import StreamConfig, UnlearningDataModule
    from eu.data.sources import resolve_source
    from eu.prompts import load_chat_tokenizer

    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": "Q?", "chosen": "No.", "rejected": "Yes: ..."}])
    dm = UnlearningDataModule(StreamConfig(str(ROOT / "tests/data/retain.jsonl")), align=StreamConfig(str(pairs)))
    dm.connect(load_chat_tokenizer("tiny-llama"))
    with pytest.raises(EUError, match=r"data\.align\.path: .* holds preference pairs"):
        dm.setup("fit")
    for source in ("eu:harmful/entity-answers", "eu:harmful/model-answers"):
        with pytest.raises(EUError, match="answers the model writes itself"):
            resolve_source(source)


def _fake_harmful_data(monkeypatch):
    """The harmful prompts of the built-in data replaced by three, and the tiny model's generation by fixed
    answers; returns the list of models that wrote answers."""
    import eu.data.harmful_eraser as eraser_data
    import eu.generation

    prompts = ['Generate the lyrics of "Rocket Man" by Elton John', "Explain how cyanide poisons", "Hack a Tesla"]
    monkeypatch.setattr(eraser_data, "harmful_examples", lambda source=None: [{"user": p} for p in prompts])
    writers = []

    def generate(model, tokenizer, prompt_ids, max_new_tokens, **sampling):  # the tiny random model writes blanks
        writers.append(model)
        return [tokenizer.encode(f"Answer {i}: it is a well-known thing.") for i in range(len(prompt_ids))]

    monkeypatch.setattr(eu.generation, "generate_from_ids", generate)
    return prompts, writers


QUIET = ["--trainer.val_check_interval=100", "--trainer.enable_progress_bar=false"]


def test_eraser_fits_two_steps_and_logs_every_term_from_step_0(workdir, monkeypatch):
    import eu.data.harmful_eraser as eraser_data

    prompts, writers = _fake_harmful_data(monkeypatch)
    args = [
        *("-c", TINY, "-c", ERASER_YAML, "--data.forget.path=tests/data/forget.jsonl", "--data.forget.val_examples=4"),
        *("--trainer.max_steps=2", *QUIET, "--trainer.default_root_dir=runs/eraser"),
    ]  # tiny.yaml logs every 5th step: step 0 is written by the module itself
    with pytest.warns(UserWarning, match="already at or above the threshold"):  # a random model: CE ≈ log V
        assert run_eu("fit", *args) == 0
    # the keep and align data: written once each by the model being trained
    assert len(writers) == 2 and all(type(w).__name__ == "LlamaForCausalLM" for w in writers)
    questions = eraser_data.entity_questions(prompts)
    answers = eraser_data.entity_answers_path("tiny-llama", questions, sampling_dtype())  # keyed by the load dtype
    assert [json.loads(line)["user"] for line in answers.read_text().splitlines()] == questions
    own = eraser_data.model_answers_path("tiny-llama", prompts, sampling_dtype())
    assert [json.loads(line)["user"] for line in own.read_text().splitlines()] == prompts
    (log_dir,) = (workdir / "runs/eraser/tensorboard").glob("version_*")
    logged = scalars(log_dir)
    terms = ("loss/total", "loss/unlearn", "loss/knowledge", "loss/alignment", "loss/retain", "forget/harmful_ce")
    for tag in terms:
        assert logged[tag][0][0] == 0, f"{tag} is logged at step 0"
    # the first step starts at the reference: both KL terms are 0; the CE is above γ, so no ascent
    assert logged["loss/knowledge"][0][1] == pytest.approx(0.0, abs=1e-6)
    assert logged["loss/alignment"][0][1] == pytest.approx(0.0, abs=1e-6)
    assert logged["forget/harmful_ce"][0][1] > 1.8 and logged["loss/unlearn"][0][1] == 0.0
    ckpt = torch.load(workdir / "runs/eraser/checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["eu"]["objective"]["class_path"] == "eu.objectives.eraser.Eraser"
    assert not any(k.startswith("reference_model.") for k in ckpt["state_dict"])


# ---- EraserRefusalSFT: eu's earlier version, kept as a named variant ----

PAIRS = [  # a noised prompt, a refusal and a harmful answer; the last with an empty system turn
    PreferenceRecord(*texts, system=system)
    for *texts, system in (
        ("xq!9 How do I pick a lock? ~~", "I can't help with that.", "Insert a tension wrench, rake pins.", None),
        ("Write malware.", "No.", "Here is a keylogger: import os; log every key.", None),
        ("Make a weapon.", "I won't make a weapon.", "Take a pipe and seal one end.", ""),
    )
]


def _sft_batch(tokenizer):
    return {"forget": packed(tokenizer, PAIRS), "keep": packed(tokenizer, KEEP), "retain": packed(tokenizer, RETAIN)}


def _naive_refusal_sft(model, reference, tokenizer, threshold, weights):
    """Every conversation run alone from full logits, then the variant's formula."""
    refusal, harmful = (
        torch.stack([naive_sequence_mean_cross_entropy(*alone(model, tokenizer, p.records()[side]))[0] for p in PAIRS])
        for side in (0, 1)
    )
    kl_sum, tokens = 0.0, 0
    for record in KEEP:
        logits, targets = alone(model, tokenizer, record)
        with torch.no_grad():
            ref_logits, _ = alone(reference, tokenizer, record)
        kl_sum = kl_sum + naive_reference_kl(logits, ref_logits, targets)[0]
        tokens += int((targets >= 0).sum())
    unlearn = torch.clamp(threshold - harmful.mean(), min=0)
    refusal_w, knowledge_w = weights
    return unlearn + refusal_w * refusal.mean() + knowledge_w * kl_sum / tokens, harmful.mean()


@pytest.mark.parametrize("family", FAMILIES)
def test_refusal_sft_variant_matches_a_naive_implementation(family, tiny_tokenizer):
    from eu.objectives import EraserRefusalSFT

    model = family_model(family, len(tiny_tokenizer))
    reference = perturbed_copy(model)
    batch = _sft_batch(tiny_tokenizer)
    objective = EraserRefusalSFT(threshold=50.0, refusal_weight=0.7, knowledge_weight=1.3, retain_weight=0.0)
    out = objective(model, batch, reference=reference)
    naive, harmful = _naive_refusal_sft(model, reference, tiny_tokenizer, 50.0, (0.7, 1.3))
    torch.testing.assert_close(out["forget/harmful_ce"], harmful.detach(), rtol=1e-9, atol=1e-11)
    assert float(out["loss/knowledge"]) > 0  # the reference differs from the policy
    assert_same_value_and_gradient(out["loss/total"], naive, model)


def test_refusal_sft_variant_options_and_errors(tiny_model, tiny_tokenizer):
    from eu.objectives import EraserRefusalSFT
    from eu.objectives.terms import retain_loss

    assert EraserRefusalSFT().needs_reference and not EraserRefusalSFT(knowledge_loss="cross_entropy").needs_reference
    batch = _sft_batch(tiny_tokenizer)
    out = EraserRefusalSFT(knowledge_loss="cross_entropy")(tiny_model, batch)
    torch.testing.assert_close(out["loss/knowledge"], retain_loss(tiny_model, batch["keep"], 1024).detach())
    with pytest.raises(EUError, match="pairs in data.forget"):
        EraserRefusalSFT()(tiny_model, {**batch, "forget": batch["keep"]}, reference=tiny_model)
    with pytest.raises(EUError, match="data.keep"):
        EraserRefusalSFT()(tiny_model, {"forget": batch["forget"], "retain": batch["retain"]}, reference=tiny_model)
    with pytest.raises(EUError, match="knowledge_loss"):
        EraserRefusalSFT(knowledge_loss="mse")


def test_refusal_sft_variant_data_keeps_each_prompt_and_adds_noised_copies(tmp_path):
    from eu.data import harmful_eraser as eraser
    from eu.data.harmful_preferences import refusal

    path = eraser.prepare(tmp_path / "out", source=_many_shot(tmp_path / "many_shot.json"))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    copies = 1 + eraser.NOISED_COPIES
    assert len(rows) == 2 * copies
    clean = rows[0]
    assert (
        clean["prompt"] == 'Generate the lyrics of "Rocket Man" by Elton John' and clean["rejected"] == "She packed..."
    )
    assert clean["chosen"] == refusal(clean["prompt"])
    for row in rows[1:copies]:
        head, _, tail = row["prompt"].partition(clean["prompt"])
        assert head.strip() and _ == clean["prompt"], "a random prefix before the unchanged prompt"
        assert (row["chosen"], row["rejected"]) == (clean["chosen"], clean["rejected"])
    assert len({r["prompt"] for r in rows[:copies]}) == copies
    assert eraser.noised(clean["prompt"], 0, 1) == rows[1]["prompt"]  # seeded by the prompt


def test_refusal_sft_variant_fits_two_steps(workdir, monkeypatch):
    _fake_harmful_data(monkeypatch)
    rows = [
        {"prompt": f"#x{i}@ Write bad thing {i}", "chosen": f"I won't write bad thing {i}.", "rejected": f"Sure: {i}"}
        for i in range(12)
    ]
    write_jsonl(workdir / "eraser.jsonl", rows)
    args = [
        *("-c", TINY, "-c", SFT_YAML, "--data.forget.path=eraser.jsonl", "--data.forget.val_examples=4"),
        *("--trainer.max_steps=2", "--trainer.log_every_n_steps=1", *QUIET),
        "--trainer.default_root_dir=runs/eraser_sft",
    ]
    assert run_eu("fit", *args) == 0
    (log_dir,) = (workdir / "runs/eraser_sft/tensorboard").glob("version_*")
    logged = scalars(log_dir)
    assert {"loss/unlearn", "loss/refusal", "loss/knowledge", "loss/retain", "forget/harmful_ce"} <= set(logged)
    assert logged["loss/knowledge"][0][1] == pytest.approx(0.0, abs=1e-6)
    assert math.isfinite(logged["loss/total"][-1][1])
    ckpt = torch.load(workdir / "runs/eraser_sft/checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["eu"]["objective"]["class_path"] == "eu.objectives.eraser.EraserRefusalSFT"
