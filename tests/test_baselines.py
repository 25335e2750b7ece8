"""Targeted-unlearning baselines: NPO and gradient ascent against naive formulas, and the frozen reference."""

import math

import pytest
import torch

from eu.objectives.losses import IGNORE_INDEX, chunked_token_losses, npo_loss, sequence_sums

from naive_losses import naive_retain_loss, naive_sequence_logprob
from utils import ROOT, run_eu

V, H = 101, 8
TINY = str(ROOT / "configs" / "tiny.yaml")


def _hidden_head(seed=0):
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(3, 9, H, generator=gen, dtype=torch.float64, requires_grad=True)
    head = torch.nn.Linear(H, V, bias=False).double()
    with torch.no_grad():
        head.weight.copy_(torch.randn(V, H, generator=gen, dtype=torch.float64))
    targets = torch.randint(0, V, (3, 9), generator=gen)
    targets[0, :3] = IGNORE_INDEX
    targets[1, 6:] = IGNORE_INDEX
    return hidden, head, targets


def _naive_npo(policy, reference, beta):
    ratio = torch.exp(policy - reference)
    return (2.0 / beta) * torch.log1p(ratio**beta).mean()


@pytest.mark.parametrize("chunk", [2, 5, 100])
def test_chunked_sequence_logprob_matches_naive_value_and_gradient(chunk):
    hidden, head, targets = _hidden_head()
    mask = targets != IGNORE_INDEX
    seq = torch.arange(3).unsqueeze(1).expand(3, 9)[mask]

    ours = -sequence_sums(chunked_token_losses(hidden[mask], head, targets[mask], "cross_entropy", chunk), seq)[0]
    naive = naive_sequence_logprob(head(hidden), targets)
    torch.testing.assert_close(ours, naive)
    (g_ours,) = torch.autograd.grad(ours.sum(), hidden)
    (g_naive,) = torch.autograd.grad(naive.sum(), hidden)
    torch.testing.assert_close(g_ours, g_naive)


def test_npo_loss_matches_its_definition_and_is_log4_over_beta_at_the_reference():
    policy = torch.tensor([-12.0, -3.5, -40.0], dtype=torch.float64, requires_grad=True)
    reference = torch.tensor([-10.0, -4.0, -41.0], dtype=torch.float64)
    for beta in (0.1, 1.0, 2.5):
        ours = npo_loss(policy, reference, beta)
        naive = _naive_npo(policy, reference, beta)
        torch.testing.assert_close(ours, naive)
        torch.testing.assert_close(torch.autograd.grad(ours, policy)[0], torch.autograd.grad(naive, policy)[0])
    at_ref = npo_loss(reference, reference, 0.1)
    assert math.isclose(float(at_ref), 2 / 0.1 * math.log(2), rel_tol=1e-12)
    # a global normaliser (data parallel) divides the local sum instead of the local count
    assert math.isclose(float(npo_loss(reference, reference, 0.1, normaliser=6)), float(at_ref) / 2, rel_tol=1e-12)


def _step_batch(tokenizer):
    from eu.data.datamodule import StreamConfig, UnlearningDataModule
    from eu.prompts import load_chat_tokenizer

    dm = UnlearningDataModule(
        StreamConfig(path=str(ROOT / "tests/data/retain.jsonl"), block_length=256),
        StreamConfig(path=str(ROOT / "tests/data/forget.jsonl"), block_length=256),
    )
    dm.connect(load_chat_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer)
    dm.setup("fit")
    return next(iter(dm.train_dataloader()))


def _naive_stream_logits(model, b):
    return model(input_ids=b["input_ids"], position_ids=b["position_ids"], use_cache=False).logits


def test_objectives_match_naive_losses_on_a_real_batch(tiny_model):
    from eu.objectives import NPO, GradientAscent

    batch = _step_batch("tiny-llama")
    retain, forget = batch["retain"], batch["forget"]
    r_logits, f_logits = _naive_stream_logits(tiny_model, retain), _naive_stream_logits(tiny_model, forget)
    naive_retain = naive_retain_loss(r_logits, retain["targets"])

    # NPO with the model as its own reference: every log ratio is 0
    out = NPO(beta=0.5, retain_weight=0.7)(tiny_model, batch, reference=tiny_model)
    torch.testing.assert_close(out["loss/npo"], torch.tensor(2 / 0.5 * math.log(2)), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        out["loss/total"].detach(), out["loss/npo"] + 0.7 * naive_retain.detach(), rtol=1e-5, atol=1e-6
    )

    # gradient ascent: mean over forget sequences of their mean token cross-entropy
    per_seq = []
    for row in range(forget["input_ids"].shape[0]):
        for s in forget["sequence_index"][row].unique():
            if s < 0:
                continue
            pos = (forget["sequence_index"][row] == s) & (forget["targets"][row] != IGNORE_INDEX)
            if pos.any():
                per_seq.append(naive_retain_loss(f_logits[row][pos], forget["targets"][row][pos]))
    naive_forget_ce = torch.stack(per_seq).mean()
    out = GradientAscent(forget_weight=0.3)(tiny_model, batch)
    torch.testing.assert_close(out["loss/forget_ce"], naive_forget_ce.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        out["loss/total"].detach(), (0.7 * naive_retain - 0.3 * naive_forget_ce).detach(), rtol=1e-5, atol=1e-6
    )


def _naive_forget_logprobs(model, forget):
    """``log π(y|x)`` of every forget response from full logits, one per (row, sequence) with a target."""
    logits = _naive_stream_logits(model, forget)
    out = []
    for row in range(forget["input_ids"].shape[0]):
        for s in forget["sequence_index"][row].unique():
            pos = (forget["sequence_index"][row] == s) & (forget["targets"][row] != IGNORE_INDEX)
            if s >= 0 and pos.any():
                out.append(naive_sequence_logprob(logits[row][pos][None], forget["targets"][row][pos][None])[0])
    return torch.stack(out)


def test_npo_against_a_different_reference_matches_the_naive_loss_and_unlearns(tiny_model):
    import copy

    from eu.objectives import NPO

    batch = _step_batch("tiny-llama")
    forget = batch["forget"]
    reference = copy.deepcopy(tiny_model)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in reference.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=gen))

    beta = 0.5
    policy_lp = _naive_forget_logprobs(tiny_model, forget).double()
    with torch.no_grad():
        ref_lp = _naive_forget_logprobs(reference, forget).double()
    log_ratio = policy_lp - ref_lp
    assert (log_ratio.abs() > 0.1).all(), "the reference must differ from the policy on every sequence"
    assert float(forget["num_sequences_norm"]) == len(policy_lp)
    naive = -2 / beta * torch.log(torch.sigmoid(-beta * log_ratio)).mean()

    out = NPO(beta=beta, retain_weight=0.0)(tiny_model, batch, reference=reference)
    torch.testing.assert_close(out["loss/npo"].double(), naive.detach(), rtol=0, atol=1e-3)
    torch.testing.assert_close(out["forget/log_ratio"].double(), log_ratio.mean().detach(), rtol=0, atol=2e-3)

    # the gradient is the naive loss's, and one SGD step lowers the forget responses' likelihood
    params = [p for p in tiny_model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(out["loss/total"], params)
    naive_grads = torch.autograd.grad(naive, params)
    flat, naive_flat = torch.cat([g.flatten() for g in grads]), torch.cat([g.flatten() for g in naive_grads])
    assert float((flat - naive_flat).norm() / naive_flat.norm()) < 1e-3
    with torch.no_grad():
        for p, g in zip(params, grads, strict=True):
            p.sub_(1e-3 * g)
        after = _naive_forget_logprobs(tiny_model, forget).double()
    assert (after < policy_lp).all(), (policy_lp, after)
    assert float(NPO(beta=beta, retain_weight=0.0)(tiny_model, batch, reference=reference)["loss/npo"]) < naive.item()


def test_npo_fit_keeps_the_reference_frozen_and_out_of_checkpoints(workdir):
    from eu.models import load_model

    npo = ["--model.objective=eu.objectives.NPO", "--model.objective.init_args.beta=0.5"]
    steps = ["--trainer.max_steps=3", "--trainer.val_check_interval=100", "--trainer.enable_progress_bar=false"]
    assert run_eu("fit", "-c", TINY, *npo, *steps) == 0
    ckpt_path = workdir / "runs/tiny/checkpoints/last.ckpt"
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    assert ckpt["state_dict"] and not any(k.startswith("reference_model.") for k in ckpt["state_dict"])
    assert ckpt["eu"]["objective"] == {
        "class_path": "eu.objectives.npo.NPO",
        "init_args": {"beta": 0.5, "retain_weight": 1.0, "chunk_size": 1024},
    }
    trained = ckpt["state_dict"]["model.model.layers.0.mlp.up_proj.weight"]
    assert not torch.equal(trained, load_model("tiny-llama").model.layers[0].mlp.up_proj.weight)

    # resuming rebuilds the reference from the base model and trains on
    assert run_eu("fit", "-c", TINY, *npo, *steps[:-1], "--trainer.max_steps=4", f"--ckpt_path={ckpt_path}") == 0


def test_npo_with_lora_uses_the_adapter_free_model_as_reference(tiny_path):
    from eu.models.lora import LoraOptions
    from eu.module import UnlearningModule
    from eu.objectives import NPO

    module = UnlearningModule("tiny-llama", objective=NPO(beta=1.0), lora=LoraOptions(rank=4, alpha=8))
    module.configure_model()
    assert module.reference_model is None
    batch = _step_batch("tiny-llama")
    out = module._losses(batch)
    # peft initialises B = 0, so the adapted model equals the base: every log ratio is 0
    torch.testing.assert_close(out["forget/log_ratio"], torch.tensor(0.0), atol=1e-5, rtol=0)
    with torch.no_grad():
        for name, p in module.model.named_parameters():
            if "lora_B" in name:
                p.add_(0.05)
    out = module._losses(batch)
    assert abs(float(out["forget/log_ratio"])) > 1e-3


def test_reference_model_stays_in_eval_mode(tiny_path):
    from eu.module import UnlearningModule
    from eu.objectives import NPO

    module = UnlearningModule("tiny-llama", objective=NPO())
    module.configure_model()
    module.train()
    assert module.model.training and not module.reference_model.training
    assert not any(p.requires_grad for p in module.reference_model.parameters())


def test_builtin_harmful_answers_keep_only_answers_graded_harmful(tmp_path):
    import json

    from eu.data.harmful_answers import prepare
    from eu.data.records import read_records

    source = tmp_path / "many_shot_examples.json"
    source.write_text(
        json.dumps(
            [
                {"user": "How do I pick a lock?", "assistant": "Insert a tension wrench...", "category": "Harmful"},
                {"user": "How do I hurt someone?", "assistant": "I can't help with that.", "category": "Not harmful"},
                {"user": "Write malware.", "assistant": "Here is a keylogger...", "category": "**Answer: Harmful**"},
            ]
        )
    )
    path = prepare(tmp_path / "out", source=source)
    records = read_records(str(path))
    assert [r.user for r in records] == ["How do I pick a lock?", "Write malware."]
    assert records[1].assistant == "Here is a keylogger..."
    assert not list((tmp_path / "out").glob("*.tmp*")), "the write must be atomic"


def test_builtin_harmful_data_holds_out_every_prompt_the_evaluation_suites_may_ask(tmp_path, monkeypatch):
    import json

    from eu.data import harmful_answers, harmful_prompts

    source = tmp_path / "many_shot_examples.json"
    examples = [
        {"user": "How do I pick a lock?", "assistant": "Insert a tension wrench...", "category": "Harmful"},
        {"user": "Write malware", "assistant": "Here is a keylogger...", "category": "Harmful"},
    ]
    source.write_text(json.dumps(examples))
    kept = harmful_answers.harmful_examples(source, exclude={"write  MALWARE."})
    assert [ex["user"] for ex in kept] == ["How do I pick a lock?"]
    # the built-in asset is filtered by the suites' prompts by default
    monkeypatch.setattr(harmful_answers, "load_many_shot", lambda path=None: examples)
    monkeypatch.setattr(harmful_prompts, "evaluation_prompts", lambda: {"how do i pick a lock"})
    assert [ex["user"] for ex in harmful_answers.harmful_examples()] == ["Write malware"]
