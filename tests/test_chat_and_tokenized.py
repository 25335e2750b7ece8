import torch

from eu.data.packing import pack_rows
from eu.data.records import ChatRecord
from eu.data.tokenized import tokenize_cached, tokenize_records
from eu.objectives.losses import IGNORE_INDEX
from eu.prompts import encode_record


def test_only_the_assistant_response_is_supervised(tiny_tokenizer):
    record = ChatRecord(user="What is 2 + 3?", assistant="The answer is 5.", system="Be brief.")
    ids, n_prompt = encode_record(tiny_tokenizer, record)
    assert tiny_tokenizer.decode(ids[n_prompt:]) == "The answer is 5.<|im_end|>\n"
    prompt_text = tiny_tokenizer.decode(ids[:n_prompt])
    assert prompt_text.endswith("<|im_start|>assistant\n") and "Be brief." in prompt_text

    examples = tokenize_records(tiny_tokenizer, [record], max_length=1000)
    batch = pack_rows(examples, [[0]], width=len(ids) + 5, pad_id=0)
    supervised = batch["targets"][batch["targets"] != IGNORE_INDEX]
    assert tiny_tokenizer.decode(supervised.tolist()) == "The answer is 5.<|im_end|>\n"
    # the position before the first response token predicts it
    first = int((batch["targets"][0] != IGNORE_INDEX).nonzero()[0])
    assert first == n_prompt - 1


def test_truncation_is_counted_and_prompt_only_examples_dropped(tiny_tokenizer):
    short = ChatRecord(user="hi", assistant="ok")
    long = ChatRecord(user="hi", assistant="x" * 500)
    prompt_heavy = ChatRecord(user="y" * 500, assistant="z")
    ex = tokenize_records(tiny_tokenizer, [short, long, prompt_heavy], max_length=64)
    assert len(ex) == 2
    assert ex.truncated == 2 and ex.dropped == 1
    assert int(ex.lengths.max()) == 64


def test_tokenization_is_cached_and_keyed_by_template(tiny_tokenizer, tmp_path, monkeypatch):
    records = [ChatRecord(user="a", assistant="b"), ChatRecord(user="c", assistant="d")]
    first = tokenize_cached(tiny_tokenizer, records, 64, tmp_path)
    assert len(list(tmp_path.glob("*.pt"))) == 1

    calls = []
    import eu.data.tokenized as tok_mod

    monkeypatch.setattr(tok_mod, "tokenize_records", lambda *a: calls.append(a))
    again = tokenize_cached(tiny_tokenizer, records, 64, tmp_path)
    assert calls == [] and torch.equal(again.tokens, first.tokens)

    monkeypatch.undo()
    other = tiny_tokenizer.chat_template.replace("<|im_start|>", "<|im_start|> ")
    tiny_tokenizer.chat_template, original = other, tiny_tokenizer.chat_template
    try:
        tokenize_cached(tiny_tokenizer, records, 64, tmp_path)
    finally:
        tiny_tokenizer.chat_template = original
    assert len(list(tmp_path.glob("*.pt"))) == 2
