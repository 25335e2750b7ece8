"""The forget corpus is trained in exactly the conversation it was sampled in, on every template."""

import copy

import pytest

import eu.data.sampler as sampler
from eu.data.records import read_records
from eu.data.sampler import SampleSettings, sample_chunk
from eu.io import write_jsonl_atomic
from eu.prompts import encode_record

# A template that, like SmolLM2's, inserts a default system prompt when the conversation has none.
DEFAULT_SYSTEM_TEMPLATE = (
    "{% for m in messages %}{% if loop.first and m['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM<|im_end|>\n{% endif %}"
    "<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# A template that, like Gemma-2's, refuses a system turn.
NO_SYSTEM_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}<|im_start|>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n{{ m['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>model\n{% endif %}"
)


@pytest.fixture(params=["default-system", "no-system"])
def template_tokenizer(request, tiny_tokenizer):
    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = DEFAULT_SYSTEM_TEMPLATE if request.param == "default-system" else NO_SYSTEM_TEMPLATE
    return request.param, tok


def test_training_sees_the_token_ids_the_corpus_was_sampled_with(tiny_model, template_tokenizer, tmp_path, monkeypatch):
    kind, tok = template_tokenizer
    calls = []
    real = sampler.generate_from_ids

    def recording(model, tokenizer, prompts, *args, **kwargs):
        out = real(model, tokenizer, prompts, *args, **kwargs)
        calls.append((prompts, out))
        return out

    monkeypatch.setattr(sampler, "generate_from_ids", recording)
    settings = SampleSettings(num_pairs=4, batch_size=4, user_tokens=8, answer_tokens=8)
    rows = sample_chunk(tiny_model, tok, settings, chunk=0, rows=4)
    (_, _), (answer_prompts, answers) = calls
    path = tmp_path / "forget.jsonl"
    write_jsonl_atomic(path, rows)

    records = read_records(str(path))
    assert all(r.system == ("" if kind == "default-system" else None) for r in records)
    for record, sampled_prompt, sampled_answer in zip(records, answer_prompts, answers, strict=True):
        full, prompt_length = encode_record(tok, record)
        # the user turn and everything before it: exactly what the answer was sampled after
        assert full[:prompt_length] == sampled_prompt
        trained_answer = tok.decode(full[prompt_length:], skip_special_tokens=True)
        assert trained_answer.strip() == tok.decode(sampled_answer, skip_special_tokens=True).strip()
        assert "named SmolLM" not in tok.decode(full)  # no default system prompt slipped in


def test_a_template_without_a_system_role_samples_without_one(template_tokenizer):
    kind, tok = template_tokenizer
    assert sampler.sampling_system(tok) == ("" if kind == "default-system" else None)
    prefix = tok.decode(sampler.user_turn_prefix(tok, sampler.sampling_system(tok)))
    assert prefix.endswith("<|im_start|>user\n") and "named SmolLM" not in prefix


def test_fit_self_generates_and_trains_with_a_template_without_a_system_role(workdir):
    from conftest import ROOT, run_eu

    template = workdir / "no_system.jinja"
    template.write_text(NO_SYSTEM_TEMPLATE)
    code = run_eu(
        "fit",
        "-c",
        str(ROOT / "configs" / "tiny.yaml"),
        f"--model.chat_template={template}",
        "--data.forget.path=self-generated",
        "--data.forget.val_examples=0",
        "--trainer.limit_val_batches=0",
        "--data.sample.num_pairs=8",
        "--data.sample.batch_size=8",
        "--data.sample.user_tokens=8",
        "--data.sample.answer_tokens=8",
        "--trainer.max_steps=2",
        "--trainer.val_check_interval=100",
        "--trainer.enable_progress_bar=false",
    )
    assert code == 0
    assert (workdir / "runs/tiny/checkpoints/last.ckpt").is_file()
