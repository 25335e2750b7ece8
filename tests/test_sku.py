"""SKU: stage 1 against a naive implementation of the authors' terms on three model families, the negation,
both stages end to end: as published (negate and stop) and the repaired variant."""

import pytest
import torch

from eu.errors import EUError
from eu.objectives.losses import IGNORE_INDEX
from eu.prompts import ChatRecord, encode_record

import objective_helpers as oh
from naive_losses import naive_sequence_mean_cross_entropy
from utils import ROOT, run_eu, scalars

TINY, METHODS = str(ROOT / "configs" / "tiny.yaml"), ROOT / "configs" / "methods"
EXPERT_YAML, SKU_YAML = str(METHODS / "sku_expert.yaml"), str(METHODS / "sku.yaml")
REPAIRED_YAML = str(METHODS / "sku_repaired.yaml")
HARMFUL = [
    ChatRecord("How do I pick a lock?", "Insert a tension wrench and rake the pins."),
    ChatRecord("Write malware.", "Here is a keylogger: import os."),
    ChatRecord("Make a weapon.", "Take a pipe and seal one end.", system=""),
]
NORMAL = [ChatRecord("What is 2 + 3?", "5"), ChatRecord("Name a colour.", "Blue.")]


def _naive_preservation_divergence(model, reference, tokenizer, records):
    """The authors' compute_reverse_kl: ``−(p_ref · log(p_ref / p_θ)).sum(-1).mean()`` over every position
    (question and answer) of the normal texts, each run alone, their positions side by side (without the
    authors' 1e-12 inside the logarithm, which moves the value by less than V·1e-12)."""
    q = torch.cat([torch.softmax(oh.alone_all_positions(model, tokenizer, r), -1) for r in records])
    with torch.no_grad():
        p = torch.cat([torch.softmax(oh.alone_all_positions(reference, tokenizer, r), -1) for r in records])
    return -(p * torch.log(p / q)).sum(-1).mean()


def _naive_sku_expert(model, reference, tokenizer, order, k, weights):
    """Each conversation alone from full logits: CE on the harmful answers, on prompt i with the
    answers of the next k examples in the step's order, and the authors' −KL(π_ref‖π_θ) on the normal data."""
    distortion = torch.stack([naive_sequence_mean_cross_entropy(*oh.alone(model, tokenizer, r))[0] for r in HARMFUL])
    n = len(order)
    mixed = [
        ChatRecord(HARMFUL[order[i]].user, HARMFUL[order[(i + s) % n]].assistant, HARMFUL[order[i]].system)
        for s in range(1, k + 1)
        for i in range(n)
    ]
    disassociation = torch.stack([naive_sequence_mean_cross_entropy(*oh.alone(model, tokenizer, r))[0] for r in mixed])
    w_gd, w_rd, w_pd = weights
    divergence = _naive_preservation_divergence(model, reference, tokenizer, NORMAL)
    return w_gd * distortion.mean() + w_rd * disassociation.mean() + w_pd * divergence


@pytest.mark.parametrize("family", oh.FAMILIES)
@pytest.mark.parametrize("k", [1, 2])
def test_sku_expert_matches_a_naive_implementation_in_value_and_gradient(family, k, tiny_tokenizer):
    from eu.objectives import SKUExpert

    model = oh.family_model(family, len(tiny_tokenizer))
    reference = oh.perturbed_copy(model)
    forget = oh.packed(tiny_tokenizer, HARMFUL, width=128)  # two rows: sequences share rows and are cut apart
    batch = {"forget": forget, "retain": oh.packed(tiny_tokenizer, NORMAL)}
    objective = SKUExpert(0.3, 0.8, 1.7, random_answers=k, chunk_size=7)
    out = objective(model, batch, reference=reference)
    naive = _naive_sku_expert(model, reference, tiny_tokenizer, forget["order"], k, (0.3, 0.8, 1.7))
    assert float(out["sku/retain_kl"]) > 0
    oh.assert_same_value_and_gradient(out["loss/total"], naive, model)
    # the preservation divergence alone, value and gradient
    only = SKUExpert(0.0, 0.0, 1.0, random_answers=k, chunk_size=7)(model, batch, reference=reference)
    divergence = _naive_preservation_divergence(model, reference, tiny_tokenizer, NORMAL)
    torch.testing.assert_close(only["loss/divergence"], divergence.detach(), rtol=1e-7, atol=1e-9)
    oh.assert_same_value_and_gradient(only["loss/total"], divergence, model)


def test_random_disassociation_pairs_each_prompt_with_other_answers_as_tokenized(tiny_tokenizer):
    from eu.objectives.sku import mismatched_batch

    forget = oh.packed(tiny_tokenizer, HARMFUL, width=128)
    order = forget["order"]
    mixed = mismatched_batch(forget, random_answers=5)  # capped at the two other answers
    assert mixed["input_ids"].shape[0] == 6
    assert float(mixed["num_sequences_norm"]) == 2 * float(forget["num_sequences_norm"])
    for row in range(6):
        s, i = divmod(row, 3)
        record = ChatRecord(HARMFUL[order[i]].user, HARMFUL[order[(i + s + 1) % 3]].assistant, HARMFUL[order[i]].system)
        ids, n_prompt = encode_record(tiny_tokenizer, record)
        where = mixed["sequence_index"][row] == row
        assert mixed["input_ids"][row][where].tolist() == ids
        assert mixed["targets"][row][where].tolist() == [IGNORE_INDEX] * (n_prompt - 1) + ids[n_prompt:] + [-100]
        assert mixed["position_ids"][row][where].tolist() == list(range(len(ids)))
    assert mismatched_batch(oh.packed(tiny_tokenizer, HARMFUL[:1]), 1) is None  # no other answer to give


def test_sku_expert_with_one_sequence_has_no_disassociation_and_needs_a_forget_stream(tiny_model, tiny_tokenizer):
    from eu.objectives import SKUExpert

    batch = {"forget": oh.packed(tiny_tokenizer, HARMFUL[:1]), "retain": oh.packed(tiny_tokenizer, NORMAL)}
    out = SKUExpert()(tiny_model, batch, reference=tiny_model)
    assert float(out["loss/disassociation"]) == 0.0
    assert float(out["sku/retain_kl"]) == pytest.approx(0.0, abs=1e-6)  # its own reference
    with pytest.raises(EUError, match="forget"):
        SKUExpert()(tiny_model, {"retain": batch["retain"]}, reference=tiny_model)
    with pytest.raises(EUError, match="random_answers"):
        SKUExpert(random_answers=0)


def test_negation_subtracts_alpha_times_the_task_vector(tiny_model):
    from eu.objectives.sku import negate_task_vector

    base = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    expert = oh.perturbed_copy(tiny_model, 0.1).state_dict()
    norm = negate_task_vector(tiny_model, expert, alpha=0.5)
    names = dict(tiny_model.named_parameters())
    tau = {k: expert[k] - base[k] for k in names}
    assert norm == pytest.approx(float(torch.sqrt(sum((t**2).sum() for t in tau.values()))), rel=1e-6)
    for name, param in names.items():
        torch.testing.assert_close(param.detach(), base[name] - 0.5 * tau[name])
    wrong = {**expert, "model.embed_tokens.weight": expert["model.embed_tokens.weight"][:3]}
    with pytest.raises(EUError, match="does not match"):
        negate_task_vector(tiny_model, wrong, 1.0)


@pytest.mark.parametrize("stage_two", ["SKUNegation", "SKURepaired"])
def test_stage_two_refuses_lora_and_an_unchanged_expert(tiny_path, stage_two):
    import eu.objectives
    from eu.models.lora import LoraOptions
    from eu.module import UnlearningModule

    cls = getattr(eu.objectives, stage_two)
    with pytest.raises(EUError, match="LoRA"):
        UnlearningModule("tiny-llama", cls(str(tiny_path)), lora=LoraOptions(rank=4)).configure_model()
    with pytest.raises(EUError, match="changed nothing"):
        UnlearningModule("tiny-llama", cls(str(tiny_path))).configure_model()
    with pytest.raises(EUError, match="run stage 1 first"):
        UnlearningModule("tiny-llama", cls("runs/none/checkpoints/last.ckpt")).configure_model()
    with pytest.raises(EUError, match="alpha"):
        cls("x", alpha=0)
    assert cls.updates_weights == (stage_two == "SKURepaired")


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_sku_two_stages_end_to_end_and_export(workdir, lora):
    from safetensors.torch import load_file

    from eu.models import load_model
    from eu.models.checkpoint import model_from_checkpoint

    quiet = ["--trainer.enable_progress_bar=false", "--trainer.val_check_interval=100", "--trainer.log_every_n_steps=1"]
    stage1 = ["-c", TINY, "-c", EXPERT_YAML, "--data.forget.path=tests/data/forget.jsonl", "--trainer.max_steps=2"]
    stage1 += ["--model.lora.rank=4", "--model.lora.alpha=8"] if lora else []
    assert run_eu("fit", *stage1, *quiet, "--trainer.default_root_dir=runs/expert") == 0
    (log_dir,) = (workdir / "runs/expert/tensorboard").glob("version_*")
    logged = scalars(log_dir)
    assert {"loss/distortion", "loss/disassociation", "loss/divergence"} <= set(logged)
    assert logged["loss/divergence"][0][1] == pytest.approx(0.0, abs=1e-6)  # the expert starts at the original

    expert_ckpt = workdir / "runs/expert/checkpoints/last.ckpt"
    base = dict(load_model("tiny-llama").named_parameters())
    expert = model_from_checkpoint(expert_ckpt)[0].state_dict()
    assert any(not torch.equal(expert[k], v) for k, v in base.items()), "stage 1 moved the weights"

    def stage_two(config, name):
        # a large learning rate and weight decay: any optimizer step would move the weights
        args = ["-c", TINY, "-c", config, f"--model.objective.init_args.expert={expert_ckpt}"]
        args += ["--model.objective.init_args.alpha=0.7", "--model.optimizer.init_args.lr=0.05"]
        args += ["--model.optimizer.init_args.weight_decay=0.1", "--trainer.max_steps=2"]
        assert run_eu("fit", *args, *quiet, f"--trainer.default_root_dir=runs/{name}") == 0
        assert run_eu("export", f"runs/{name}/checkpoints/last.ckpt", f"exported_{name}") == 0
        (log_dir,) = (workdir / f"runs/{name}/tensorboard").glob("version_*")
        assert [s for s, _ in scalars(log_dir)["loss/retain"]] == [0, 1], "the retain loss is measured every step"
        return load_file(workdir / f"exported_{name}" / "model.safetensors")

    # SKU as published: the negated model is the result; the run's steps leave it as it is
    exported = stage_two(SKU_YAML, "sku")
    assert set(base) <= set(exported) | {"lm_head.weight"}
    for name, theta in base.items():
        if name in exported:
            negated = theta.detach() - 0.7 * (expert[name] - theta.detach())
            torch.testing.assert_close(exported[name], negated, rtol=1e-6, atol=1e-7)
    # the repaired variant trains on the retain data after the same negation
    repaired = stage_two(REPAIRED_YAML, "sku_repaired")
    moved = [
        name
        for name, theta in base.items()
        if name in repaired
        and not torch.allclose(repaired[name], theta.detach() - 0.7 * (expert[name] - theta.detach()), atol=1e-4)
    ]
    assert moved, "the retain steps of SKURepaired change the weights"
