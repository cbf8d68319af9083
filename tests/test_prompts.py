"""Whole data sets through `helpers.prompts` on the tiny tokenizer (the real-tokenizer matrix is in
test_templates.py): rows of either layout, truncation, a bad row named by its number."""
import pytest
from datasets import Dataset

import dropped
from helpers.errors import TutorialError
from helpers.prompts import (IGNORE_INDEX, ensure_pad_token, lengths, qa_messages, row_messages, tokenize,
                             training_example)

CONVERSATION = [{"role": "system", "content": "短く答えてください。"}, *qa_messages("こんにちは", "こんにちは。"),
                *qa_messages("日本の首都はどこですか？", "東京です。")]


def trained_text(tokenizer, example):
    return tokenizer.decode([t if label != IGNORE_INDEX else tokenizer.pad_token_id
                             for t, label in zip(example["input_ids"], example["labels"])], skip_special_tokens=True)


def test_instruction_rows_and_conversations_train_every_answer_with_its_end(tiny_tokenizer):
    pair = training_example(tiny_tokenizer, row_messages({"instruction": "日本の首都はどこですか？", "output": "東京です。"}))
    assert trained_text(tiny_tokenizer, pair) == "東京です。"
    assert [label for label in pair["labels"] if label != IGNORE_INDEX][-1] == tiny_tokenizer.eos_token_id
    conversation = training_example(tiny_tokenizer, row_messages({"messages": CONVERSATION}))
    assert trained_text(tiny_tokenizer, conversation) == "こんにちは。東京です。"
    assert conversation["labels"].count(tiny_tokenizer.eos_token_id) == 2


def test_a_data_set_of_conversations_is_tokenized_and_measured(tiny_tokenizer):
    rows = Dataset.from_list([{"messages": CONVERSATION}, {"messages": CONVERSATION[1:3]}])
    encoded = tokenize(rows, tiny_tokenizer, 256)
    assert encoded.column_names == ["input_ids", "attention_mask", "labels"]
    assert lengths(rows, tiny_tokenizer) == [len(ids) for ids in encoded["input_ids"]]


def test_truncation_is_flagged_and_counted(tiny_tokenizer, capsys):
    long_answer = "とても長い答えです。" * 20
    example = training_example(tiny_tokenizer, qa_messages("質問", long_answer), max_length=24)
    assert example["truncated"] and len(example["input_ids"]) == len(example["labels"]) == 24
    encoded = tokenize(Dataset.from_list([{"instruction": "質問", "output": long_answer},
                                          {"instruction": "質問", "output": "短い"}]), tiny_tokenizer, 24)
    assert "1 / 2 行" in capsys.readouterr().out
    assert encoded.column_names == ["input_ids", "attention_mask", "labels"]


def test_a_row_the_template_refuses_is_named_by_its_number(tiny_tokenizer):
    tiny_tokenizer.chat_template = ("{% for m in messages %}{% if m['role'] == 'system' %}"
                                    "{{ raise_exception('System role not supported') }}{% endif %}"
                                    "{{ m['content'] }}{{ eos_token }}{% endfor %}")
    rows = Dataset.from_list([{"messages": CONVERSATION[1:3]}, {"messages": CONVERSATION}])
    with pytest.raises(TutorialError, match="データの 2 行目 \\(「こんにちは」で始まる行\\): .*受け付けません"):
        tokenize(rows, tiny_tokenizer, 256)


def test_a_conversation_without_an_answer_is_refused(tiny_tokenizer):
    with pytest.raises(TutorialError, match="assistant"):
        training_example(tiny_tokenizer, "こんにちは")


def test_max_length_that_cuts_off_every_answer_stops_before_training(tiny_tokenizer):
    rows = Dataset.from_list([{"instruction": f"質問 {i} はなんですか", "output": "答えです"} for i in range(3)])
    needed = max(lengths(rows, tiny_tokenizer))
    with pytest.raises(TutorialError, match=f"3 行すべてが答えの始まる前で切れて.*MAX_LENGTH を {needed} 以上"):
        tokenize(rows, tiny_tokenizer, 4)
    assert len(tokenize(rows, tiny_tokenizer, needed)) == 3


def test_rows_that_would_train_nothing_are_left_out_and_every_one_named(tiny_tokenizer, capsys):
    long = [{"instruction": f"とても長い質問 {i} です。" * 10, "output": "はい"} for i in range(8)]  # more than the 5 once shown
    rows = Dataset.from_list([{"instruction": "短い", "output": "はい"}] + long)
    short, *longs = lengths(rows, tiny_tokenizer)
    encoded = tokenize(rows, tiny_tokenizer, short + 2)
    assert len(encoded) == 1 and any(label != IGNORE_INDEX for label in encoded[0]["labels"])
    printed = capsys.readouterr().out
    listed = dropped.listed(printed)
    assert set(listed) == set(range(2, 10)) and "ほか" not in printed
    assert f"質問「とても長い質問 7 です。とても長い質問」は {longs[7]} トークン" in listed[9] and f"MAX_LENGTH を {longs[7]} 以上" in listed[9]


def test_a_pad_that_is_a_stop_id_is_replaced_by_an_existing_token(tiny_tokenizer):
    tiny_tokenizer.pad_token = tiny_tokenizer.eos_token  # as many models' configs set it
    size = len(tiny_tokenizer)
    ensure_pad_token(tiny_tokenizer)
    assert tiny_tokenizer.pad_token == "<pad>" and len(tiny_tokenizer) == size


def test_without_any_spare_token_the_eos_pads_with_a_note_and_nothing_is_added(capsys):
    """The last resort, on a GPT-2-like vocabulary whose only special token is its EOS (also BOS and unk): a token
    added would lie beyond the model's embeddings (an index error in generate and in training)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    words = Tokenizer(models.WordLevel({"<|endoftext|>": 0, "a": 1, "b": 2}, unk_token="<|endoftext|>"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, eos_token="<|endoftext|>", bos_token="<|endoftext|>",
                                        unk_token="<|endoftext|>")
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}{{ eos_token }}{% endfor %}"
    ensure_pad_token(tokenizer)
    assert tokenizer.pad_token == "<|endoftext|>" and len(tokenizer) == 3
    assert "終わりの印「<|endoftext|>」を詰め物 (pad) にも使います" in capsys.readouterr().out


def test_every_row_with_special_token_text_is_listed_and_ordinary_brackets_pass(tiny_tokenizer):
    rows = Dataset.from_list([{"instruction": f"質問 {i}", "output": f"答え</s>{i}"} for i in range(23)])
    with pytest.raises(TutorialError) as refused:
        lengths(rows, tiny_tokenizer)
    lines = str(refused.value).splitlines()
    assert lines[0].startswith("データの 23 箇所に") and lines[1] == "- 1 行目 (「質問 0」で始まる行) の output: 「</s>」"
    assert lines[20] == "- 20 行目 (「質問 19」で始まる行) の output: 「</s>」" and lines[21] == "- … ほか 3 箇所"
    assert "(例: 「</s>」→「＜/s＞」)" in lines[22]
    ordinary = Dataset.from_list([{"instruction": "1 < 2 ですか？", "output": "はい。<b>太字</b> や [s] は印ではありません。"}])
    assert len(lengths(ordinary, tiny_tokenizer)) == 1
