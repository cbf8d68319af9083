"""Conversations as the model sees them: the text, the token ids, what is trained, where a turn ends.

The public surface (stable; outside checks may call it):

    training_example(tokenizer, messages, max_length=None) -> {"input_ids", "attention_mask", "labels", "truncated"}
    prompt_ids(tokenizer, messages) -> list[int]     # the ids `generate` starts from
    stop_ids(tokenizer) -> list[int]                 # the ids that end an assistant turn
    special_token_in(tokenizer, text) -> str | None  # a special token written as text (refused in data)

`messages` is a list of {"role": "system" | "user" | "assistant", "content": str}, or one question as a str.

The whole conversation is rendered with the tokenizer's chat template (FALLBACK_TEMPLATE when it has
none) and tokenized in one go, exactly as at inference. Each assistant turn is trained from where the
rendering of the conversation before it (plus the generation prompt) ends, up to and including the
first stop id: the answer and the template's own end-of-turn marker. Everything else is -100. All of
this is read from the tokenizer and its template, never from model names. Text holding a special token
(`</s>` typed into an answer) is refused, not escaped: tokenized in one go, as at inference and by
llama.cpp, it would become the token itself, and an escape would differ from what the model meets later.
"""
from __future__ import annotations

import re
import weakref

from jinja2 import TemplateError

from .errors import Problem, TutorialError, list_dropped

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
_SPECIAL = weakref.WeakKeyDictionary()  # tokenizer → (its special tokens, a pattern finding them in a text)
_NOTED = set()  # models told that they have no chat template (once each)


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
    _note_fallback(tokenizer)
    return _render(tokenizer, as_messages(messages), add_generation_prompt)


def _render(tokenizer, messages: list[dict], add_generation_prompt: bool) -> str:
    try:
        return tokenizer.apply_chat_template(messages, chat_template=tokenizer.chat_template or FALLBACK_TEMPLATE,
                                             tokenize=False, add_generation_prompt=add_generation_prompt)
    except (TemplateError, ValueError) as exc:  # the template's raise_exception ("System role not supported", …)
        roles = " → ".join(m["role"] for m in messages)
        raise TutorialError(
            f"このモデルのチャットテンプレートが会話 ({roles}) を受け付けません: {exc}。"
            "system メッセージを使えないテンプレート (Gemma 2 など) なら、system の内容を最初の user メッセージに含めてください。"
            "user と assistant が交互でないと受け付けないテンプレートもあります。") from exc


def _note_fallback(tokenizer) -> None:
    """Say once per model, showing its shape, that a tokenizer without a chat template gets FALLBACK_TEMPLATE."""
    if tokenizer.chat_template or tokenizer.name_or_path in _NOTED:
        return
    _NOTED.add(tokenizer.name_or_path)
    shape = _render(tokenizer, [{"role": "system", "content": "(system の指示)"}, *qa_messages("(質問)", "(答え)")], False)
    print(f"注意: このモデル ({tokenizer.name_or_path}) にはチャットテンプレート (会話をモデルに渡す書き方) がないので、"
          "このリポジトリの次の書き方で会話を書いて、学習も推論もします:\n"
          + "".join(f"    {line}\n" for line in shape.splitlines())
          + "事前学習だけのベースモデルなら、このままで構いません。指示に従うよう調整済みのモデル (instruct / chat) なら、"
          "調整されたときの書き方と違うので、元の答え方を活かせません。そのモデルのチャットテンプレートを "
          "tokenizer.chat_template に設定するか、チャットテンプレートのあるモデルを選んでください。")


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


def special_token_in(tokenizer, text: str) -> str | None:
    """The first special token of the model (`</s>`, `<|im_end|>`, …) written as text in `text`, or None."""
    key = tuple(tokenizer.all_special_tokens)
    known = _SPECIAL.get(tokenizer)
    if not known or known[0] != key:
        tokens = {t.content for t in tokenizer.added_tokens_decoder.values() if t.special} | set(key)
        longest = sorted((t for t in tokens if t), key=len, reverse=True)
        known = _SPECIAL[tokenizer] = (key, re.compile("|".join(map(re.escape, longest))) if longest else None)
    found = known[1] and known[1].search(text)
    return found.group() if found else None


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
    for place, m in enumerate(messages, start=1):
        if token := special_token_in(tokenizer, m["content"]):
            raise TutorialError(f"{place} 番目のメッセージ ({m['role']}) に、このモデルの特別なトークン「{token}」が"
                                f"文字として書かれています。{_special_harm(tokenizer, token)}")
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
    """A pad token that is never a stop id where the vocabulary has one (saved with the adapter, so pad-masking
    collators keep the turn ends); else EOS, with a note (a token added would need the embeddings resized)."""
    stops = set(stop_ids(tokenizer))
    if tokenizer.pad_token_id is not None and tokenizer.pad_token_id not in stops:
        return
    spare = _spare_token(tokenizer, stops)
    if spare is not None:
        tokenizer.pad_token = spare
        return
    tokenizer.pad_token = tokenizer.eos_token  # a new token would need the model's embeddings resized
    print(f"注意: このトークナイザーには、答えの終わりの印でないトークンがほかにないので、終わりの印「{tokenizer.eos_token}」を詰め物 (pad) にも使います。"
          "このリポジトリの学習はラベルを自分で作るので問題ありませんが、詰め物を学習から外す標準の collator "
          "(DataCollatorForLanguageModeling) でこのモデルを学習し直すと、答えの終わりを学習しなくなります。")


def _spare_token(tokenizer, stops: set[int]) -> str | None:
    """A non-stop token to pad with: named pad, unk, the last reserved/unused (early ones get meanings later), BOS."""
    added = sorted((not t.special, i, t.content) for i, t in tokenizer.added_tokens_decoder.items() if i not in stops)
    pads = [content for _, _, content in added if "pad" in content.lower()]
    reserved = [content for _, _, content in sorted(added, key=lambda a: (a[0], -a[1]))
                if re.search("reserved|unused", content)]
    own = [tokenizer.unk_token if tokenizer.unk_token_id not in stops else None,
           tokenizer.bos_token if tokenizer.bos_token_id not in stops else None]
    return next((t for t in pads[:1] + own[:1] + reserved[:1] + own[1:] if t is not None), None)


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
    refuse_special_tokens(dataset, tokenizer)
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
        if len(nothing) == len(encoded):
            raise TutorialError(f"MAX_LENGTH={max_length} では、{len(encoded)} 行すべてが答えの始まる前で切れてしまい、何も学習できません"
                                f" (行の長さは {min(full)}〜{max(full)} トークン)。MAX_LENGTH を {max(full)} 以上にしてください。")
        questions = [next(m["content"] for m in row_messages(dataset[i]) if m["role"] == "user") for i in nothing]
        part = {"train": "学習用のデータ", "validation": "検証用のデータ"}.get(str(dataset.split), "データ")
        list_dropped(f"{part} ({len(encoded)} 行)", [
            Problem(i + 1, "", f"質問「{question[:20]}」は {length} トークンで、答えの始まる前で切れるので、学習から除きます",
                    f"使うなら MAX_LENGTH を {length} 以上にしてください") for i, question, length in zip(nothing, questions, full)],
            "その中の順番 (02 で混ぜたので、元のファイルでは質問の文で探してください)")
        dropped = set(nothing)
        encoded = encoded.select([i for i in range(len(encoded)) if i not in dropped])
    return encoded.remove_columns("truncated")


def lengths(dataset, tokenizer) -> list[int]:
    """Tokens per row as training will see it (the whole conversation, or the text + EOS)."""
    refuse_special_tokens(dataset, tokenizer)
    if "text" in dataset.column_names:
        return [len(encode(tokenizer, text)) + 1 for text in dataset["text"]]
    _note_dropped_system(dataset, tokenizer)
    return [len(_row_example(tokenizer, row, index)["input_ids"]) for index, row in enumerate(dataset)]


def refuse_special_tokens(dataset, tokenizer) -> None:
    """Stop on rows whose text holds a special token of the model, listing each row, field and token."""
    found = []
    for index, row in enumerate(dataset):
        hits = [(field, token) for field, text in _fields(row) if (token := special_token_in(tokenizer, text))]
        if hits and "text" in row:
            where = f"{index + 1} 番目の段落 (「{row['text'][:20]}」で始まる段落)"
        elif hits:
            where = row_label(row_messages(row), index)
        found += [(f"- {where} の {field}: 「{token}」", token) for field, token in hits]
    if found:
        more = [f"- … ほか {len(found) - 20} 箇所"] if len(found) > 20 else []
        raise TutorialError(f"データの {len(found)} 箇所に、このモデルの特別なトークン (会話の区切りの印) が文字として書かれています"
                            " (行番号は、読み込んだデータの中での順番):\n" + "\n".join([line for line, _ in found[:20]] + more)
                            + "\n" + _special_harm(tokenizer, found[0][1]))


def _fields(row: dict) -> list[tuple[str, str]]:
    """(the field's name as the learner wrote it, its text) for a text, instruction/output or conversation row."""
    if "text" in row:
        return [("本文", row["text"])]
    if "messages" in row:
        return [(f"{place} 番目のメッセージ ({m['role']})", m["content"]) for place, m in enumerate(row["messages"], start=1)]
    return [("instruction", row["instruction"]), ("output", row["output"])]


def _special_harm(tokenizer, token: str) -> str:
    """What a special token written as text does to training, and the fix, with `token` as the example."""
    stops = "」「".join(tokenizer.convert_ids_to_tokens(stop_ids(tokenizer)))
    escaped = token.translate(str.maketrans("<>[]|", "＜＞［］｜"))
    example = f" (例: 「{token}」→「{escaped}」) " if escaped != token else " "
    return (f"学習では、その文字列が印のトークンそのものになります。答えの終わりの印 (「{stops}」) なら、答えがそこで終わったことになり、"
            "その先は学習されず、モデルはそこで答えを止めることを覚えます。その文字列を消すか、印と読まれない書き方"
            f"{example}に直して、データを読み込み直してください (02 の 2A〜2D)。")


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


def row_label(messages: list[dict], index: int) -> str:
    """The row as the learner finds it: its number and how its first question begins."""
    first = next((m["content"] for m in messages if m["role"] == "user"), "")
    return f"{index + 1} 行目 (「{first[:30]}」で始まる行)"


def _row_example(tokenizer, row: dict, index: int, max_length: int | None = None) -> dict:
    messages = row_messages(row)
    try:
        return training_example(tokenizer, messages, max_length)
    except TutorialError as exc:
        raise TutorialError(f"データの {row_label(messages, index)}: {exc}") from exc


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
    full = _render(tokenizer, user + [{"role": "assistant", "content": _PROBE}], False)
    prompt = _render(tokenizer, user, True)
    opening, _, closing = full.removeprefix(prompt).partition(_PROBE)
    ids = tokenizer(closing, add_special_tokens=False).input_ids if _PROBE in full else []
    special = tokenizer.added_tokens_decoder
    marker = next((i for i in ids if i in special and special[i].special), None)
    stops = tuple(i for i in dict.fromkeys([tokenizer.eos_token_id, marker]) if i is not None)
    facts = (adds_bos, opening if full.startswith(prompt) else "", stops, closing if _PROBE in full else "")
    _FACTS[tokenizer] = (key, facts)
    return facts
