"""Turn a question into the model's prompt, and a question/answer pair into training ids.

Works from the tokenizer alone, without model names: a chat template if the tokenizer has one
(Alpaca-style, ChatML, ...), otherwise a plain `ユーザー: … システム: ` layout.
"""
from __future__ import annotations

NO_TEMPLATE_ROLES = {"system": "", "user": "ユーザー: ", "assistant": "システム: "}
IGNORE_INDEX = -100  # label value the loss ignores


def format_chat(tokenizer, messages: list[dict]) -> str:
    """A conversation (role/content dicts) as the text the model sees before its next reply."""
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    lines = [NO_TEMPLATE_ROLES[m["role"]] + m["content"] for m in messages]
    return "\n".join(lines) + "\n" + NO_TEMPLATE_ROLES["assistant"]


def format_prompt(tokenizer, question: str) -> str:
    """The text the model sees before its answer to one question."""
    return format_chat(tokenizer, [{"role": "user", "content": question}])


def _adds_bos(tokenizer) -> bool:
    bos = tokenizer.bos_token_id
    return bos is not None and tokenizer("あ").input_ids[:1] == [bos]


def encode_prompt(tokenizer, prompt: str) -> list[int]:
    """Token ids of a prompt with exactly one BOS where the tokenizer uses one.

    Templates that already write the BOS text would otherwise get a second one.
    """
    ids = tokenizer(prompt, add_special_tokens=False).input_ids
    if _adds_bos(tokenizer) and ids[:1] != [tokenizer.bos_token_id]:
        ids = [tokenizer.bos_token_id] + ids
    return ids


def build_example(tokenizer, question: str, answer: str, max_length: int) -> dict:
    """input_ids/labels for one row: prompt positions are -100, answer + EOS are learned."""
    prompt_ids = encode_prompt(tokenizer, format_prompt(tokenizer, question))
    answer_ids = tokenizer(answer, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    input_ids = (prompt_ids + answer_ids)[:max_length]
    labels = ([IGNORE_INDEX] * len(prompt_ids) + answer_ids)[:max_length]
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels,
            "truncated": len(prompt_ids) + len(answer_ids) > max_length}


def ensure_pad_token(tokenizer) -> None:
    """Batches need a pad token; labels are built explicitly, so pad == eos does no harm here."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token


def text_blocks(texts: list[str], tokenizer, block_size: int) -> list[dict]:
    """Plain text for continued pre-training: all texts joined (EOS between), cut into blocks.

    Every token is learned (no masking). The last, shorter block is kept, not dropped.
    """
    ids = []
    for text in texts:
        ids += encode_prompt(tokenizer, text) + [tokenizer.eos_token_id]
    return [{"input_ids": ids[i:i + block_size], "attention_mask": [1] * len(ids[i:i + block_size]),
             "labels": ids[i:i + block_size]} for i in range(0, len(ids), block_size) if len(ids[i:i + block_size]) > 1]


def tokenize(dataset, tokenizer, max_length: int):
    """Training rows: instruction/output pairs (prompt masked), or a `text` column cut into blocks."""
    from datasets import Dataset

    ensure_pad_token(tokenizer)
    if "text" in dataset.column_names:
        blocks = text_blocks(dataset["text"], tokenizer, max_length)
        print(f"テキスト {len(dataset)} 段落 → {max_length} トークンずつのブロック {len(blocks)} 個")
        return Dataset.from_list(blocks)
    encoded = dataset.map(lambda row: build_example(tokenizer, row["instruction"], row["output"], max_length),
                          remove_columns=dataset.column_names)
    cut = sum(encoded["truncated"])
    if cut:
        print(f"注意: {cut} / {len(encoded)} 行が max_length={max_length} トークンを超えたので末尾を切りました。"
              "答えが途中で切れると EOS を学べません。max_length を増やすか、長い行を短くしてください。")
    return encoded.remove_columns("truncated")


def lengths(dataset, tokenizer) -> list[int]:
    """Tokens per row as training will see it (prompt + answer + EOS, or the text + EOS)."""
    if "text" in dataset.column_names:
        return [len(encode_prompt(tokenizer, text)) + 1 for text in dataset["text"]]
    return [len(build_example(tokenizer, row["instruction"], row["output"], 10**9)["input_ids"]) for row in dataset]
