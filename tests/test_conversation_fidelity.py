"""The forget corpus is trained in exactly the conversation it was sampled in, on every template."""

import copy

import pytest

import eu.data.sampler as sampler
from eu.data.records import read_records
from eu.data.sampler import SampleSettings, sample_chunk
from eu.errors import EUError
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


CASES = {
    # (template, system setting): the reference's default (no system turn) on a template that adds
    # its default system prompt, an explicit empty system turn, and a template without a system role
    "default-system/none": (DEFAULT_SYSTEM_TEMPLATE, None),
    "default-system/empty": (DEFAULT_SYSTEM_TEMPLATE, ""),
    "no-system/none": (NO_SYSTEM_TEMPLATE, None),
}


@pytest.fixture(params=sorted(CASES))
def case(request, tiny_tokenizer):
    template, system = CASES[request.param]
    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = template
    return tok, system


def test_training_sees_the_token_ids_the_corpus_was_sampled_with(tiny_model, case, tmp_path, monkeypatch):
    tok, system = case
    calls = []
    real = sampler.generate_from_ids

    def recording(model, tokenizer, prompts, *args, **kwargs):
        out = real(model, tokenizer, prompts, *args, **kwargs)
        calls.append((prompts, out))
        return out

    monkeypatch.setattr(sampler, "generate_from_ids", recording)
    settings = SampleSettings(num_pairs=4, batch_size=4, user_tokens=8, answer_tokens=8, system=system)
    rows = sample_chunk(tiny_model, tok, settings, chunk=0, rows=4)
    (user_prefixes, _), (answer_prompts, answers) = calls
    path = tmp_path / "forget.jsonl"
    write_jsonl_atomic(path, rows)

    records = read_records(str(path))
    assert all(r.system == system for r in records)
    for record, prefix, sampled_prompt, sampled_answer in zip(
        records, user_prefixes, answer_prompts, answers, strict=True
    ):
        full, prompt_length = encode_record(tok, record)
        # the user turn and everything before it: exactly what the answer was sampled after
        assert full[:prompt_length] == sampled_prompt
        # and the conversation opens as it did when the model wrote the user turn
        assert full[: len(prefix)] == prefix
        trained_answer = tok.decode(full[prompt_length:], skip_special_tokens=True)
        assert trained_answer.strip() == tok.decode(sampled_answer, skip_special_tokens=True).strip()
        assert ("named SmolLM" in tok.decode(full)) == (system is None and tok.chat_template == DEFAULT_SYSTEM_TEMPLATE)


def test_a_system_turn_on_a_template_without_a_system_role_is_a_clear_error(tiny_tokenizer):
    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = NO_SYSTEM_TEMPLATE
    assert sampler.sampling_system(tok, None) is None
    with pytest.raises(EUError, match="refuses a system turn"):
        sampler.sampling_system(tok, "")


def test_fit_self_generates_and_trains_with_a_template_without_a_system_role(workdir):
    from utils import ROOT, run_eu

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


def test_records_are_stripped_and_joined_as_the_reference_builds_them(tmp_path):
    import json

    path = tmp_path / "alpaca.jsonl"
    rows = [
        {"instruction": "  Add the numbers. ", "input": " 2 and 3\n", "output": " 5 \n"},
        {"instruction": "Say hi.\n", "input": "  ", "output": "Hi!"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    first, second = read_records(str(path))
    assert (first.user, first.assistant) == ("Add the numbers.\n2 and 3", "5")
    assert (second.user, second.assistant) == ("Say hi.", "Hi!")


def test_sampling_stops_at_eos_and_the_templates_end_of_turn_marker(tiny_tokenizer):
    from eu.generation import end_token_ids

    ends = end_token_ids(tiny_tokenizer)
    assert tiny_tokenizer.eos_token_id in ends
    assert tiny_tokenizer.convert_tokens_to_ids("<|im_end|>") in ends


def test_sampling_dtype_is_bfloat16_only_where_the_device_computes_it_natively(monkeypatch):
    import eu.models.precision
    from eu.models import sampling_dtype

    monkeypatch.setattr(eu.models.precision.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(eu.models.precision, "cpu_bf16_flags", lambda cpuinfo=None: [])
    assert sampling_dtype() is None
    monkeypatch.setattr(eu.models.precision, "cpu_bf16_flags", lambda cpuinfo=None: ["avx512_bf16"])
    assert sampling_dtype() == "bfloat16"


def test_the_forget_corpus_cache_is_keyed_by_the_sampling_dtype():
    from eu.data.harmful_eraser import entity_answers_path
    from eu.data.sampler import SampleSettings
    from eu.data.self_generated import corpus_path

    settings = SampleSettings(num_pairs=8)
    float32 = corpus_path("m", settings)
    assert corpus_path("m", settings, "float32") == float32  # corpora cached before keep their keys
    assert corpus_path("m", settings, "bfloat16") != float32
    assert entity_answers_path("m", ["q"], "float32") == entity_answers_path("m", ["q"])
    assert entity_answers_path("m", ["q"], "bfloat16") != entity_answers_path("m", ["q"])


@pytest.mark.parametrize("native", [None, "bfloat16"])
def test_the_module_hands_the_data_its_sampling_loader_and_that_loaders_dtype_together(monkeypatch, native):
    import torch

    import eu.module
    from eu.module import UnlearningModule

    monkeypatch.setattr(eu.module, "sampling_dtype", lambda: native)
    given = {}

    class Data:
        def connect(self, tokenizer, model_name, load_model, load_dtype):
            given.update(tokenizer=tokenizer, name=model_name, load=load_model, dtype=load_dtype)

    module = UnlearningModule(model="tiny-llama")
    module.connect_data(Data())
    monkeypatch.setattr(eu.module, "sampling_dtype", lambda: "float16")  # decided once, at connect time
    assert given["tokenizer"] is module.tokenizer and given["name"] == "tiny-llama" and given["dtype"] == native
    assert next(given["load"]().parameters()).dtype == (torch.bfloat16 if native else torch.float32)


def test_eu_sample_then_fit_on_a_tiny_gemma2_with_a_system_less_template(workdir, tiny_tokenizer):
    """The Gemma-2 family end to end: soft-capped logits, no system role, sample then train."""
    import torch
    from transformers import Gemma2Config, Gemma2ForCausalLM

    from eu.data.records import read_records

    from utils import ROOT, run_eu

    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = NO_SYSTEM_TEMPLATE
    sizes = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
    config = Gemma2Config(vocab_size=len(tok), num_key_value_heads=2, head_dim=8, final_logit_softcapping=30.0, **sizes)
    config.pad_token_id, config.bos_token_id, config.eos_token_id = tok.pad_token_id, 1, tok.eos_token_id
    torch.manual_seed(0)
    model_dir = workdir / "tiny-gemma2"
    Gemma2ForCausalLM(config).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)

    corpus = workdir / "forget.jsonl"
    sample = ["--num_pairs=6", "--batch_size=6", "--user_tokens=8", "--answer_tokens=8", "--device=cpu"]
    assert run_eu("sample", f"--model={model_dir}", f"--out={corpus}", *sample) == 0
    assert all(r.system is None for r in read_records(str(corpus)))
    fit = ["--trainer.max_steps=2", "--trainer.limit_val_batches=0", "--trainer.enable_progress_bar=false"]
    data = [f"--data.forget.path={corpus}", "--data.forget.val_examples=0", "--data.retain.val_examples=0"]
    assert run_eu("fit", "-c", str(ROOT / "configs" / "tiny.yaml"), f"--model.model={model_dir}", *data, *fit) == 0
    assert (workdir / "runs/tiny/checkpoints/last.ckpt").is_file()
