"""Conversations as the model sees them: the text, the token ids, what is trained, where a turn ends.

The public surface (stable; outside checks may call it):

    training_example(tokenizer, messages, max_length=None) -> {"input_ids", "attention_mask", "labels", "truncated"}
    prompt_ids(tokenizer, messages) -> list[int]     # the ids `generate` starts from
    stop_ids(tokenizer) -> list[int]                 # the ids that end an assistant turn

`messages` is a list of {"role": "system" | "user" | "assistant", "content": str}, or one question as a str.

The whole conversation is rendered with the tokenizer's chat template (FALLBACK_TEMPLATE when it has
none) and tokenized in one go, exactly as at inference. Each assistant turn is trained from where the
rendering of the conversation before it (plus the generation prompt) ends, up to and including the
first stop id: the answer and the template's own end-of-turn marker. Everything else is -100. All of
this is read from the tokenizer and its template, never from model names.
"""
from __future__ import annotations

import weakref

from jinja2 import TemplateError

from .errors import TutorialError

IGNORE_INDEX = -100  # label value the loss ignores
# For tokenizers without a chat template (base models). It ends the prompt with a newline rather than
# a space (a trailing space becomes a token of its own) and closes every answer with EOS.
FALLBACK_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}\n"
    "{% elif m['role'] == 'user' %}ユーザー: {{ m['content'] }}\n"
    "{% else %}システム:\n{{ m['content'] }}{{ eos_token }}\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}システム:\n{% endif %}")
_PROBE = "zq答えqz"  # an answer no template alters, to find what a template writes around answers
_FACTS = weakref.WeakKeyDictionary()  # tokenizer → (its template and special tokens, what _facts found)


def as_messages(conversation) -> list[dict]:
    """One question (str) as a one-message conversation; a conversation as a list of role/content dicts."""
    if isinstance(conversation, str):
        return [{"role": "user", "content": conversation}]
    return [{"role": m["role"], "content": m["content"]} for m in conversation]


def qa_messages(question: str, answer: str) -> list[dict]:
    """A question and its answer as a two-message conversation."""
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def row_messages(row: dict) -> list[dict]:
    """A prepared data row as a conversation: its `messages`, or instruction → output."""
    return as_messages(row["messages"]) if "messages" in row else qa_messages(row["instruction"], row["output"])


def format_chat(tokenizer, messages, add_generation_prompt: bool = True) -> str:
    """The conversation as text: with `add_generation_prompt`, ready for the model's next answer."""
    messages = as_messages(messages)
    try:
        return tokenizer.apply_chat_template(messages, chat_template=tokenizer.chat_template or FALLBACK_TEMPLATE,
                                             tokenize=False, add_generation_prompt=add_generation_prompt)
    except (TemplateError, ValueError) as exc:  # the template's raise_exception ("System role not supported", …)
        roles = " → ".join(m["role"] for m in messages)
        raise TutorialError(
            f"このモデルのチャットテンプレートが会話 ({roles}) を受け付けません: {exc}。"
            "system メッセージを使えないテンプレート (Gemma 2 など) なら、system の内容を最初の user メッセージに含めてください。"
            "user と assistant が交互でないと受け付けないテンプレートもあります。") from exc


def encode(tokenizer, text: str) -> list[int]:
    """Token ids of a rendered text with exactly one BOS where the tokenizer uses one.

    Templates that write the BOS themselves would otherwise get a second one; EOS is never appended.
    """
    ids = tokenizer(text, add_special_tokens=False).input_ids
    if adds_bos(tokenizer) and ids[:1] != [tokenizer.bos_token_id]:
        ids = [tokenizer.bos_token_id] + ids
    return ids


def prompt_ids(tokenizer, messages) -> list[int]:
    """The ids the model starts its next answer from (the same ids training puts before that answer)."""
    return encode(tokenizer, format_chat(tokenizer, messages, add_generation_prompt=True))


def stop_ids(tokenizer) -> list[int]:
    """The ids that end an assistant turn: EOS and the template's own end-of-turn marker
    (`<|im_end|>`, `<|eot_id|>`, `<end_of_turn>`, …). Used for training, `generate` and finish reasons."""
    return list(_facts(tokenizer)[2])


def answer_text(tokenizer, new_ids) -> str:
    """What the model answered: the generated ids up to the first stop id, without special tokens
    and without what the template writes before every answer (such as an empty thinking block)."""
    stops, ids = set(stop_ids(tokenizer)), [int(i) for i in new_ids]
    end = next((i for i, token in enumerate(ids) if token in stops), len(ids))
    return tokenizer.decode(ids[:end], skip_special_tokens=True).removeprefix(_facts(tokenizer)[1]).strip()


def answer_opening(tokenizer) -> str:
    """What the template writes before every answer (such as an empty thinking block), "" for most."""
    return _facts(tokenizer)[1]


def answer_closing(tokenizer) -> str:
    """What the template writes after every answer (its end-of-turn marker and line breaks)."""
    return _facts(tokenizer)[3]


def adds_bos(tokenizer) -> bool:
    """Whether the tokenizer puts a BOS in front of a text itself (llama.cpp does the same)."""
    return _facts(tokenizer)[0]


def training_example(tokenizer, messages, max_length: int | None = None) -> dict:
    """input_ids/labels for a conversation: every assistant turn (answer + end-of-turn marker) is
    trained, everything else is -100. `truncated` says the ids were cut at `max_length`."""
    messages = as_messages(messages)
    if not any(m["role"] == "assistant" for m in messages):
        raise TutorialError("会話に assistant の発言がないので、学習するところがありません。")
    ids = encode(tokenizer, format_chat(tokenizer, messages, add_generation_prompt=False))
    labels = [IGNORE_INDEX] * len(ids)
    stops = set(stop_ids(tokenizer))
    turns = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    starts = [len(_checked_prefix(tokenizer, messages, turn, ids)) for turn in turns]
    for number, start in enumerate(starts):
        limit = starts[number + 1] if number + 1 < len(starts) else len(ids)
        end = next((i for i in range(start, limit) if ids[i] in stops), None)
        if end is None:
            raise TutorialError("チャットテンプレートが答えの終わりに終了の印 (EOS など) を書かないので、"
                                "モデルが答えを止めることを学べません。チャットテンプレートのあるモデルを選んでください。")
        labels[start:end + 1] = ids[start:end + 1]
    cut = max_length is not None and len(ids) > max_length
    ids, labels = (ids[:max_length], labels[:max_length]) if cut else (ids, labels)
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels, "truncated": cut}


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
        ids += encode(tokenizer, text) + [tokenizer.eos_token_id]
    return [{"input_ids": ids[i:i + block_size], "attention_mask": [1] * len(ids[i:i + block_size]),
             "labels": ids[i:i + block_size]} for i in range(0, len(ids), block_size) if len(ids[i:i + block_size]) > 1]


def tokenize(dataset, tokenizer, max_length: int):
    """Training rows: conversations or instruction/output pairs (assistant turns learned), or a
    `text` column cut into blocks."""
    from datasets import Dataset

    ensure_pad_token(tokenizer)
    _note_dropped_system(dataset, tokenizer)
    if "text" in dataset.column_names:
        blocks = text_blocks(dataset["text"], tokenizer, max_length)
        print(f"テキスト {len(dataset)} 段落 → {max_length} トークンずつのブロック {len(blocks)} 個")
        return Dataset.from_list(blocks)
    # A list, not `dataset.map`: map fingerprints its function by hashing the tokenizer, seconds for a
    # 150k-262k-token vocabulary (Qwen, Gemma), twice per run of 03
    encoded = Dataset.from_list([_row_example(tokenizer, row, index, max_length) for index, row in enumerate(dataset)])
    cut = sum(encoded["truncated"])
    if cut:
        print(f"注意: {cut} / {len(encoded)} 行が max_length={max_length} トークンを超えたので末尾を切りました。"
              "答えが途中で切れると、答えの終わり (終了の印) を学べません。max_length を増やすか、長い行を短くしてください。")
    nothing = [i for i, labels in enumerate(encoded["labels"]) if all(label == IGNORE_INDEX for label in labels)]
    if nothing:
        full = [len(_row_example(tokenizer, dataset[i], i)["input_ids"]) for i in nothing]
        questions = [next(m["content"] for m in row_messages(dataset[i]) if m["role"] == "user") for i in nothing[:5]]
        shown = "、".join(f"「{q[:20]}」" for q in questions) + (" ほか" if len(nothing) > 5 else "")
        if len(nothing) == len(encoded):
            raise TutorialError(f"MAX_LENGTH={max_length} では、{len(encoded)} 行すべてが答えの始まる前で切れてしまい、何も学習できません"
                                f" (行の長さは {min(full)}〜{max(full)} トークン)。MAX_LENGTH を {max(full)} 以上にしてください。")
        print(f"注意: {len(nothing)} / {len(encoded)} 行 (質問 {shown}) は答えの始まる前で切れるので、学習から除きます"
              f" (その行の長さは {min(full)}〜{max(full)} トークン)。使うなら MAX_LENGTH を {max(full)} 以上にしてください。")
        dropped = set(nothing)
        encoded = encoded.select([i for i in range(len(encoded)) if i not in dropped])
    return encoded.remove_columns("truncated")


def lengths(dataset, tokenizer) -> list[int]:
    """Tokens per row as training will see it (the whole conversation, or the text + EOS)."""
    if "text" in dataset.column_names:
        return [len(encode(tokenizer, text)) + 1 for text in dataset["text"]]
    _note_dropped_system(dataset, tokenizer)
    return [len(_row_example(tokenizer, row, index)["input_ids"]) for index, row in enumerate(dataset)]


def _note_dropped_system(dataset, tokenizer) -> None:
    """Say so when the template replaces the data's system message (llm-jp-3 writes a fixed sentence)."""
    conversations = dataset["messages"][:50] if "messages" in dataset.column_names else []
    system = next((m["content"] for c in conversations for m in c if m["role"] == "system"), "")
    if not system:
        return
    try:
        rendered = format_chat(tokenizer, [{"role": "system", "content": system}, {"role": "user", "content": "あ"}])
    except TutorialError:  # a template that refuses system messages: the rows themselves say so
        return
    if system not in rendered:
        print("注意: このモデルのチャットテンプレートは、データの system の内容を使いません (決まった文に置き換えます)。"
              "system で書いた指示はモデルに届かないので、必要なら最初の user の発言に書いてください。")


def _row_example(tokenizer, row: dict, index: int, max_length: int | None = None) -> dict:
    messages = row_messages(row)
    try:
        return training_example(tokenizer, messages, max_length)
    except TutorialError as exc:
        first = next((m["content"] for m in messages if m["role"] == "user"), "")
        raise TutorialError(f"データの {index + 1} 行目 (「{first[:30]}」で始まる行): {exc}") from exc


def _checked_prefix(tokenizer, messages: list[dict], turn: int, ids: list[int]) -> list[int]:
    """The prompt ids before assistant turn `turn`, checked to be the start of the conversation's ids."""
    prompt = prompt_ids(tokenizer, messages[:turn])
    if ids[:len(prompt)] != prompt:
        at = next(i for i, (a, b) in enumerate(zip(prompt, ids + [None] * len(prompt))) if a != b)
        shown = lambda seq: tokenizer.convert_ids_to_tokens(seq[at:at + 3]) if at < len(seq) else "(終わり)"
        raise TutorialError(
            f"チャットテンプレートの都合で、{turn + 1} 番目の発言 (assistant) の前までを単独でトークンにした結果が、"
            f"会話全体をトークンにした結果と {at} トークン目から食い違います (単独: {shown(prompt)} / 全体: {shown(ids)})。"
            "このままでは、学習と推論でモデルが見るトークンが違ってしまいます。答えの先頭の空白や改行を消してみてください。"
            "テンプレートが前のターンを書き換える (Qwen3 が前の答えの思考部分を消すなど) 場合は、"
            "会話を最後の答えまでで区切った 1 ターンずつの行に分けてください。")
    return prompt


def _facts(tokenizer) -> tuple[bool, str, tuple[int, ...], str]:
    """(the tokenizer adds a BOS itself, the text its template writes before every answer, the stop
    ids, the text it writes after every answer), found by tokenizing a character and rendering a probe answer; remembered per tokenizer."""
    key = (tokenizer.chat_template, tokenizer.bos_token_id, tokenizer.eos_token_id)
    known = _FACTS.get(tokenizer)
    if known and known[0] == key:
        return known[1]
    adds_bos = tokenizer.bos_token_id is not None and tokenizer("あ").input_ids[:1] == [tokenizer.bos_token_id]
    user = [{"role": "user", "content": "あ"}]
    full = format_chat(tokenizer, user + [{"role": "assistant", "content": _PROBE}], add_generation_prompt=False)
    prompt = format_chat(tokenizer, user)
    opening, _, closing = full.removeprefix(prompt).partition(_PROBE)
    ids = tokenizer(closing, add_special_tokens=False).input_ids if _PROBE in full else []
    special = tokenizer.added_tokens_decoder
    marker = next((i for i in ids if i in special and special[i].special), None)
    stops = tuple(i for i in dict.fromkeys([tokenizer.eos_token_id, marker]) if i is not None)
    facts = (adds_bos, opening if full.startswith(prompt) else "", stops, closing if _PROBE in full else "")
    _FACTS[tokenizer] = (key, facts)
    return facts
