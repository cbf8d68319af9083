"""Training examples exactly as the model will see them, on real tokenizers and chat templates.

The matrix runs every tokenizer/template pair of `real_tokenizers.PAIRS` (llm-jp-3's SentencePiece
with its Alpaca-style template, Qwen2.5/Qwen3 ChatML, Llama 3.1 headers, Gemma 3, Gemma 2 whose turn
end differs from its EOS, and no template) through the public surface of `helpers.prompts`
and `helpers.generation`.
"""
import re
from functools import lru_cache

import pytest
import torch
from datasets import Dataset
from transformers import AutoTokenizer, DataCollatorForLanguageModeling, LlamaConfig, LlamaForCausalLM

import real_tokenizers
from helpers.errors import TutorialError
from helpers.generation import answer, reply
from helpers.prompts import (IGNORE_INDEX, encode, ensure_pad_token, format_chat, lengths, prompt_ids, qa_messages,
                             stop_ids, tokenize, training_example)

pytestmark = pytest.mark.colab  # run under Colab's versions too (make test)

PAIRS = list(real_tokenizers.PAIRS)
SYSTEM = {"role": "system", "content": "あなたは親切な案内係です。"}
CONVERSATIONS = [
    [{"role": "user", "content": "日本の首都はどこですか？"}, {"role": "assistant", "content": "東京です。"}],
    [SYSTEM, {"role": "user", "content": "こんにちは"}, {"role": "assistant", "content": "こんにちは。ご用件をどうぞ。"},
     {"role": "user", "content": "42に1を足すと？"}, {"role": "assistant", "content": "43"}],
    [{"role": "user", "content": "好きな色は？"}, {"role": "assistant", "content": "青 と 緑です。"},
     {"role": "user", "content": "理由は？"}, {"role": "assistant", "content": "空と森の色だから。"}],
]


@lru_cache(maxsize=None)
def tokenizer_for(pair):
    tokenizer = real_tokenizers.load(pair)
    ensure_pad_token(tokenizer)
    return tokenizer


def conversations(pair):
    """Gemma 2's template refuses a system message (tested below), so it gets them without."""
    refuses_system = pair == "gemma2"
    return [[m for m in c if not (refuses_system and m["role"] == "system")] for c in CONVERSATIONS]


def assistant_turns(messages):
    return [i for i, m in enumerate(messages) if m["role"] == "assistant"]


def marker(tokenizer):
    """The template's own turn end: the stop id that is not EOS, or EOS where they are the same."""
    return ([i for i in stop_ids(tokenizer) if i != tokenizer.eos_token_id] or [tokenizer.eos_token_id])[0]


@pytest.mark.parametrize("pair", PAIRS)
def test_training_ids_are_the_conversation_tokenized_in_one_go(pair):
    tokenizer = tokenizer_for(pair)
    for messages in conversations(pair):
        example = training_example(tokenizer, messages)
        text = format_chat(tokenizer, messages, add_generation_prompt=False)
        plain = tokenizer(text, add_special_tokens=False).input_ids
        adds_bos = tokenizer.bos_token_id is not None and tokenizer("あ").input_ids[:1] == [tokenizer.bos_token_id]
        missing_bos = adds_bos and plain[:1] != [tokenizer.bos_token_id]
        assert example["input_ids"] == ([tokenizer.bos_token_id] if missing_bos else []) + plain


@pytest.mark.parametrize("pair", PAIRS)
def test_inference_prompt_is_exactly_the_prompt_part_of_training(pair):
    tokenizer = tokenizer_for(pair)
    for messages in conversations(pair):
        example = training_example(tokenizer, messages)
        for turn in assistant_turns(messages):
            prompt = prompt_ids(tokenizer, messages[:turn])
            assert example["input_ids"][:len(prompt)] == prompt
            assert example["labels"][len(prompt) - 1] == IGNORE_INDEX  # the generation prompt itself is not trained
            assert example["labels"][len(prompt)] != IGNORE_INDEX  # the answer starts right after it


@pytest.mark.parametrize("pair", PAIRS)
def test_exactly_the_assistant_parts_and_one_turn_end_each_are_trained(pair):
    tokenizer = tokenizer_for(pair)
    end = marker(tokenizer)
    for messages in conversations(pair):
        example = training_example(tokenizer, messages)
        ids, labels = example["input_ids"], example["labels"]
        trained = [i for i, label in enumerate(labels) if label != IGNORE_INDEX]
        assert all(labels[i] == ids[i] for i in trained)
        spans, current = [], []
        for i in trained:  # contiguous runs of trained positions, one per assistant turn
            if current and i != current[-1] + 1:
                spans.append(current)
                current = []
            current.append(i)
        spans.append(current)
        answers = [messages[t]["content"] for t in assistant_turns(messages)]
        assert len(spans) == len(answers)
        for span, content in zip(spans, answers):
            assert ids[span[-1]] == end and [ids[i] for i in span].count(end) == 1
            text = tokenizer.decode([ids[i] for i in span[:-1]], skip_special_tokens=True)
            assert text.endswith(content) and text[:-len(content)].strip() in ("", "<think>\n\n</think>")  # Qwen3
        assert sum(label in stop_ids(tokenizer) for label in labels) == len(answers)


@pytest.mark.parametrize("pair", PAIRS)
def test_exactly_one_bos_where_the_tokenizer_uses_one(pair):
    tokenizer = tokenizer_for(pair)
    bos = tokenizer.bos_token_id
    adds = bos is not None and tokenizer("あ").input_ids[:1] == [bos]
    writes = bos is not None and format_chat(tokenizer, CONVERSATIONS[0]).startswith(tokenizer.bos_token)
    for messages in conversations(pair):
        ids = training_example(tokenizer, messages)["input_ids"]
        assert (ids.count(bos) if bos is not None else 0) == (1 if adds or writes else 0)
        if adds or writes:
            assert ids[0] == bos
        if adds and writes:  # the trap: tokenizing the rendered text with special tokens doubles the BOS
            assert tokenizer(format_chat(tokenizer, messages)).input_ids[:2] == [bos, bos]


def test_llm_jp_answers_are_trained_without_the_leading_space_mark():
    """The bug this matrix was built for: on SentencePiece an answer tokenized on its own starts with
    `▁`, a token the model never meets after `### 応答:\\n`."""
    tokenizer = tokenizer_for("llm-jp-3")
    assert tokenizer.convert_ids_to_tokens(tokenizer("東京です。", add_special_tokens=False).input_ids)[0] == "▁東京"
    assert tokenizer.convert_ids_to_tokens(tokenizer("42", add_special_tokens=False).input_ids)[0] == "▁42"
    for content, first in (("東京です。", "東京"), ("42", "42")):
        example = training_example(tokenizer, [{"role": "user", "content": "質問"}, {"role": "assistant", "content": content}])
        trained = [t for t, label in zip(example["input_ids"], example["labels"]) if label != IGNORE_INDEX]
        assert tokenizer.convert_ids_to_tokens(trained)[0] == first


def test_gemma2_turn_end_is_not_eos_and_system_is_refused_in_japanese():
    tokenizer = tokenizer_for("gemma2")
    assert tokenizer.eos_token == "<eos>"
    assert tokenizer.convert_ids_to_tokens(stop_ids(tokenizer)) == ["<eos>", "<end_of_turn>"]
    with pytest.raises(Exception, match="system の内容を最初の user メッセージ"):
        training_example(tokenizer, CONVERSATIONS[1])


def test_no_template_prompt_ends_with_a_newline_not_a_space():
    tokenizer = tokenizer_for("no-template")
    assert tokenizer.chat_template is None
    prompt = format_chat(tokenizer, "日本の首都は？")
    assert prompt == "ユーザー: 日本の首都は？\nシステム:\n"
    assert tokenizer.convert_ids_to_tokens(encode(tokenizer, prompt))[-1] == "<0x0A>"


# Llama 3's tokenizer has neither a pad nor an unk: the pad was its turn end <|eot_id|>. The pad each pair gets:
PADS = {"llm-jp-3": "<PAD|LLM-jp>", "qwen2.5": "<|endoftext|>", "qwen3": "<|endoftext|>",
        "llama3.1": "<|reserved_special_token_250|>", "gemma3": "<pad>", "gemma2": "<pad>", "no-template": "<PAD|LLM-jp>"}


@pytest.mark.parametrize("pair", PAIRS)
def test_the_pad_is_never_a_stop_id_is_in_the_vocabulary_and_is_saved(pair, tmp_path):
    tokenizer = real_tokenizers.load(pair)
    size = len(tokenizer)
    ensure_pad_token(tokenizer)
    assert tokenizer.pad_token == PADS[pair] and tokenizer.pad_token_id not in stop_ids(tokenizer)
    assert len(tokenizer) == size  # an existing token: the model's embeddings need no resizing
    tokenizer.save_pretrained(tmp_path)  # what 04 saves with the adapter and 05 copies into merged/
    saved = AutoTokenizer.from_pretrained(tmp_path)
    assert (saved.pad_token, saved.pad_token_id) == (tokenizer.pad_token, tokenizer.pad_token_id)
    ensure_pad_token(saved)
    assert saved.pad_token == PADS[pair]


@pytest.mark.parametrize("pair", PAIRS)
def test_a_collator_that_masks_the_pad_keeps_every_trained_turn_end(pair):
    """Hugging Face's DataCollatorForLanguageModeling labels every pad id -100: someone who goes on training
    the shared model with it must still train the turn ends (with the pad on <|eot_id|>, none were left)."""
    tokenizer = tokenizer_for(pair)
    examples = [training_example(tokenizer, m) for m in conversations(pair)]
    batch = DataCollatorForLanguageModeling(tokenizer, mlm=False)([{"input_ids": e["input_ids"]} for e in examples])
    stops = set(stop_ids(tokenizer))
    for row, example in enumerate(examples):
        labels = batch["labels"][row][batch["attention_mask"][row].bool()].tolist()  # left or right padded
        ends = [i for i, label in enumerate(example["labels"]) if label in stops]
        assert ends and all(labels[i] == example["input_ids"][i] for i in ends)


def rows_with(token):
    """Every layout of data row, the second row of each holding `token` as text in the given field."""
    return {
        "output": Dataset.from_list([{"instruction": "日本の首都は？", "output": "東京です。"},
                                     {"instruction": "富士山の高さは？", "output": f"3776 m です。{token}ほかに"}]),
        "instruction": Dataset.from_list([{"instruction": "日本の首都は？", "output": "東京です。"},
                                          {"instruction": f"富士山{token}の高さは？", "output": "3776 m です。"}]),
        "3 番目のメッセージ (user)": Dataset.from_list([{"messages": CONVERSATIONS[0]}, {"messages": [
            *qa_messages("富士山の高さは？", "3776 m です。"), *qa_messages(f"では{token}は？", "ありません。")]}]),
        "本文": Dataset.from_dict({"text": ["富士山の高さは 3776 m です。", f"富士山の高さは{token}3776 m です。"]}),
    }


@pytest.mark.parametrize("pair", PAIRS)
def test_special_token_text_in_any_field_is_refused_naming_the_row_and_the_field(pair):
    tokenizer = tokenizer_for(pair)
    specials = {*tokenizer.convert_ids_to_tokens(stop_ids(tokenizer)), tokenizer.pad_token}
    for token in specials:
        # the harm: tokenized in one go, the text is the token itself, an extra turn end inside the answer
        plain = qa_messages("富士山の高さは？", "3776 m です。")
        typed = qa_messages("富士山の高さは？", f"3776 m です。{token}ほかに")
        count = lambda m: encode(tokenizer, format_chat(tokenizer, m, add_generation_prompt=False)).count(
            tokenizer.convert_tokens_to_ids(token))
        assert count(typed) == count(plain) + 1
        with pytest.raises(TutorialError, match=f"2 番目のメッセージ \\(assistant\\) に、このモデルの特別なトークン「{re.escape(token)}」"):
            training_example(tokenizer, typed)
        for field, rows in rows_with(token).items():
            where = "2 番目の段落 (「富士山の高さは" if field == "本文" else "2 行目 (「富士山"
            for check in (lambda: lengths(rows, tokenizer), lambda: tokenize(rows, tokenizer, 256)):  # 02 and 03
                with pytest.raises(TutorialError) as refused:
                    check()
                message = str(refused.value)
                assert message.startswith("データの 1 箇所に、このモデルの特別なトークン") and "(02 の 2A〜2D)" in message
                line = next(line for line in message.splitlines() if line.startswith("- "))
                assert line.startswith(f"- {where}") and line.endswith(f"の {field}: 「{token}」"), line
            assert lengths(rows.select([0]), tokenizer)  # the first row alone passes


@pytest.mark.parametrize("pair", PAIRS)
def test_a_model_without_a_chat_template_is_told_once_which_layout_it_gets(pair, capsys):
    tokenizer = real_tokenizers.load(pair)
    tokenizer.name_or_path = f"test/{pair}-{id(tokenizer)}"  # a model not told yet in this process
    capsys.readouterr()
    rows = Dataset.from_list([{"instruction": "日本の首都は？", "output": "東京です。"}] * 2)
    format_chat(tokenizer, "日本の首都は？")
    lengths(rows, tokenizer)
    tokenize(rows, tokenizer, 64)
    printed = capsys.readouterr().out
    notice = f"注意: このモデル ({tokenizer.name_or_path}) にはチャットテンプレート"
    if tokenizer.chat_template:
        assert notice not in printed
        return
    assert printed.count(notice) == 1
    assert ("このリポジトリの次の書き方で会話を書いて、学習も推論もします:\n    (system の指示)\n    ユーザー: (質問)\n"
            "    システム:\n    (答え)</s>\n") in printed
    assert "調整済みのモデル (instruct / chat) なら" in printed and "tokenizer.chat_template に設定する" in printed


@lru_cache(maxsize=None)
def trained_model(pair):
    """A small random-weight Llama with this tokenizer's vocabulary, fully trained for a few steps on
    the conversations (through `training_example`) until it answers them."""
    tokenizer = tokenizer_for(pair)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=256, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config)
    examples = [training_example(tokenizer, m) for m in conversations(pair)]
    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.tensor([e["input_ids"] + [tokenizer.pad_token_id] * (width - len(e["input_ids"])) for e in examples])
    labels = torch.tensor([e["labels"] + [IGNORE_INDEX] * (width - len(e["labels"])) for e in examples])
    mask = torch.tensor([[1] * len(e["input_ids"]) + [0] * (width - len(e["input_ids"])) for e in examples])
    targets = labels[:, 1:] != IGNORE_INDEX  # logits only where a label is learned: a big vocabulary stays cheap
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1][targets]
        torch.nn.functional.cross_entropy(model.lm_head(hidden), labels[:, 1:][targets]).backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()


def final_prompts(pair):
    return [m[:assistant_turns(m)[-1]] for m in conversations(pair)], [m[-1]["content"] for m in conversations(pair)]


@pytest.mark.parametrize("pair", PAIRS)
def test_generation_gives_each_answer_and_stops_on_the_turn_end(pair):
    tokenizer, model = tokenizer_for(pair), trained_model(pair)
    prompts, expected = final_prompts(pair)
    assert len(set(expected)) == len(expected)  # distinct answers for distinct conversations: not one constant
    for prompt, wanted in zip(prompts, expected):
        text, _, new_tokens, finish = reply(model, tokenizer, prompt, max_new_tokens=24)
        assert (text, finish) == (wanted, "stop") and new_tokens < 24
        ids = torch.tensor([prompt_ids(tokenizer, prompt)])
        output = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=24, do_sample=False,
                                eos_token_id=stop_ids(tokenizer), pad_token_id=tokenizer.pad_token_id)[0, ids.shape[1]:]
        assert output[-1].item() == marker(tokenizer)  # stopped on the template's own turn end


@pytest.mark.parametrize("pair", ["gemma2"])
def test_without_the_turn_end_marker_generation_runs_on(pair):
    """The control for Gemma 2: EOS alone (what `generate` would use by default) does not stop it."""
    tokenizer, model = tokenizer_for(pair), trained_model(pair)
    prompt = final_prompts(pair)[0][0]
    ids = torch.tensor([prompt_ids(tokenizer, prompt)])
    output = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=24, do_sample=False,
                            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)[0, ids.shape[1]:]
    assert len(output) == 24 and marker(tokenizer) in output.tolist()


@pytest.mark.parametrize("pair", PAIRS)
def test_batched_left_padded_answers_equal_one_at_a_time(pair):
    tokenizer, model = tokenizer_for(pair), trained_model(pair)
    prompts, expected = final_prompts(pair)
    batched = answer(model, tokenizer, prompts, max_new_tokens=24, batch_size=len(prompts))
    assert batched == [answer(model, tokenizer, [p], max_new_tokens=24)[0] for p in prompts] == expected



@pytest.mark.parametrize("pair", PAIRS)
def test_the_servers_streamed_deltas_add_up_to_each_trained_answer(pair):
    """Byte-level tokenizers split a Japanese character over several tokens: the server must not send
    half a character, nor take back anything sent, with stop strings or without."""
    from helpers.serve import Texts
    tokenizer = tokenizer_for(pair)
    for messages in conversations(pair):
        for turn in assistant_turns(messages):
            prompt = prompt_ids(tokenizer, messages[:turn])
            ids = encode(tokenizer, format_chat(tokenizer, messages[:turn + 1], add_generation_prompt=False))
            answer_ids, wanted = ids[len(prompt):], messages[turn]["content"]
            for stops in ([], ["です"], ["の色"]):
                texts, streamed = Texts(tokenizer, stops), ""
                for token in answer_ids:
                    texts.add([token])
                    streamed += texts.delta()
                    assert "\ufffd" not in streamed and texts.text().startswith(streamed), (pair, streamed)
                streamed += texts.delta(final=True)
                cuts = [wanted.find(s) for s in stops if s in wanted]
                assert streamed == texts.text() == (wanted[:min(cuts)] if cuts else wanted), (pair, stops)
