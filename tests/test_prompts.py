import pytest

from helpers.prompts import IGNORE_INDEX, build_example, encode_prompt, format_prompt, tokenize

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def with_template(tokenizer, style):
    """The tiny tokenizer dressed as another family: ChatML (eos = <|im_end|>, no BOS) or none."""
    if style == "chatml":
        tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
        tokenizer.chat_template = CHATML
        tokenizer.eos_token = "<|im_end|>"
    elif style == "none":
        tokenizer.chat_template = None
    return tokenizer


@pytest.mark.parametrize("style", ["alpaca_with_bos", "chatml", "none"])
def test_prompt_is_masked_and_answer_plus_eos_is_learned(tiny_tokenizer, style):
    tokenizer = with_template(tiny_tokenizer, style)
    question, answer = "ルミナ王国の首都はどこですか？", "ソラリスです。"
    example = build_example(tokenizer, question, answer, max_length=128)
    prompt_len = len(encode_prompt(tokenizer, format_prompt(tokenizer, question)))
    labels, ids = example["labels"], example["input_ids"]

    assert len(labels) == len(ids) == len(example["attention_mask"])
    assert labels[:prompt_len] == [IGNORE_INDEX] * prompt_len
    assert labels[prompt_len:] == ids[prompt_len:]
    assert labels[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(labels[prompt_len:-1]) == answer
    assert question in tokenizer.decode(ids[:prompt_len])
    assert not example["truncated"]


def test_template_that_writes_bos_gets_exactly_one(tiny_tokenizer):
    prompt = format_prompt(tiny_tokenizer, "こんにちは")
    assert prompt.startswith(tiny_tokenizer.bos_token)  # the tiny template writes BOS itself
    naive = tiny_tokenizer(prompt).input_ids  # what plain tokenising would give
    assert naive[:2] == [tiny_tokenizer.bos_token_id] * 2
    ids = encode_prompt(tiny_tokenizer, prompt)
    assert ids.count(tiny_tokenizer.bos_token_id) == 1 and ids[0] == tiny_tokenizer.bos_token_id


def test_bos_added_when_template_has_none(tiny_tokenizer):
    tokenizer = with_template(tiny_tokenizer, "none")
    ids = encode_prompt(tokenizer, format_prompt(tokenizer, "こんにちは"))
    assert ids[0] == tokenizer.bos_token_id and ids.count(tokenizer.bos_token_id) == 1
    assert format_prompt(tokenizer, "こんにちは") == "ユーザー: こんにちは\nシステム: "


def test_chatml_prompt_has_no_bos(tiny_tokenizer):
    tokenizer = with_template(tiny_tokenizer, "chatml")
    from tokenizers import processors
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(single="$A", pair="$A $B")
    assert tokenizer("こんにちは").input_ids[0] != tokenizer.bos_token_id  # Qwen-style: nothing added
    ids = encode_prompt(tokenizer, format_prompt(tokenizer, "こんにちは"))
    assert tokenizer.bos_token_id not in ids
    assert tokenizer.decode(ids).endswith("<|im_start|>assistant\n")


def test_truncation_is_flagged_and_counted(tiny_tokenizer, capsys):
    from datasets import Dataset
    long_answer = "とても長い答えです。" * 20
    example = build_example(tiny_tokenizer, "質問", long_answer, max_length=24)
    assert example["truncated"] and len(example["input_ids"]) == 24
    encoded = tokenize(Dataset.from_list([{"instruction": "質問", "output": long_answer},
                                          {"instruction": "質問", "output": "短い"}]), tiny_tokenizer, 24)
    assert "1 / 2 行" in capsys.readouterr().out
    assert encoded.column_names == ["input_ids", "attention_mask", "labels"]
