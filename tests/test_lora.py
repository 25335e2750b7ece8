"""LoRA through peft: adapter-only checkpoints, merged export identical to the checkpoint."""

import torch

from utils import ROOT, run_eu

TINY = str(ROOT / "configs" / "tiny.yaml")
LORA = [
    "--model.lora.rank=4",
    "--model.lora.alpha=8",
    "--trainer.max_steps=3",
    "--trainer.val_check_interval=100",
    "--trainer.enable_progress_bar=false",
    "--trainer.callbacks.init_args.every_n_train_steps=3",
]


def test_lora_fit_export_reload_generates_like_the_checkpoint(workdir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from eu.models import load_model
    from eu.models.checkpoint import model_from_checkpoint

    assert run_eu("fit", "-c", TINY, *LORA) == 0
    ckpt_path = workdir / "runs/tiny/checkpoints/last.ckpt"
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    assert ckpt["state_dict"] and all("lora_" in k for k in ckpt["state_dict"])
    assert ckpt["eu"]["lora"]["rank"] == 4

    merged, tokenizer = model_from_checkpoint(ckpt_path)
    base = load_model("tiny-llama")
    w_base = base.model.layers[0].self_attn.q_proj.weight
    w_merged = merged.model.layers[0].self_attn.q_proj.weight
    assert not torch.equal(w_base, w_merged), "the adapter should change the merged weights"

    out = workdir / "exported"
    assert run_eu("export", str(ckpt_path), str(out)) == 0
    reloaded = AutoModelForCausalLM.from_pretrained(out).eval()
    assert not any("lora" in k for k in reloaded.state_dict())
    tok = AutoTokenizer.from_pretrained(out)
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "2 + 2?"}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    kwargs = dict(max_new_tokens=10, do_sample=False, pad_token_id=tok.pad_token_id)
    assert torch.equal(merged.eval().generate(**prompt, **kwargs), reloaded.generate(**prompt, **kwargs))


def test_lora_checkpoint_resumes(workdir):
    assert run_eu("fit", "-c", TINY, *LORA) == 0
    ckpt = workdir / "runs/tiny/checkpoints/last.ckpt"
    more = [a for a in LORA if not a.startswith("--trainer.max_steps")] + ["--trainer.max_steps=5"]
    assert run_eu("fit", "-c", TINY, *more, f"--ckpt_path={ckpt}") == 0
