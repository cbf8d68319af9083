"""Answer questions or conversations (or continue texts) with `model.generate`; perplexity of texts.

A prompt is one question (str) or a conversation (role/content dicts) ending before the answer
wanted. `generate` always gets the template's stop ids (`prompts.stop_ids`), so it stops where the
assistant turn ends whatever the model's generation_config says.
"""
from __future__ import annotations

import torch
from tqdm.auto import tqdm

from .scores import parse_number
from .prompts import (IGNORE_INDEX, answer_text, as_messages, encode, ensure_pad_token, prompt_ids, stop_ids,
                      text_blocks, training_example)


@torch.no_grad()
def answer(model, tokenizer, prompts: list, max_new_tokens: int = 64, batch_size: int = 8,
           chat: bool = True, progress: str = "", **generate_kwargs) -> list[str]:
    """Greedy answers (unless sampling options are given), left-padded in batches, cut at the turn end.

    `chat=False` continues each text as it is, without the chat template (text mode).
    `progress`: a label for a progress bar counting the questions answered (none when empty).
    """
    ensure_pad_token(tokenizer)
    model.eval()
    answers = []
    bar = tqdm(total=len(prompts), desc=progress, unit="問", disable=not progress)
    for start in range(0, len(prompts), batch_size):
        encoded = [prompt_ids(tokenizer, p) if chat else encode(tokenizer, p) for p in prompts[start:start + batch_size]]
        width = max(map(len, encoded))
        pad = tokenizer.pad_token_id  # left padding: every prompt ends where generation starts
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in encoded])
        attention_mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in encoded])
        output = model.generate(input_ids=input_ids.to(model.device),
                                attention_mask=attention_mask.to(model.device),
                                max_new_tokens=max_new_tokens, pad_token_id=pad, eos_token_id=stop_ids(tokenizer),
                                **({"do_sample": False} | generate_kwargs))
        answers += [answer_text(tokenizer, row[width:]) for row in output]
        bar.update(len(encoded))
    bar.close()
    return answers


@torch.no_grad()
def perplexity(model, tokenizer, texts: list[str], block_size: int = 256) -> float:
    """exp(mean next-token loss) over the texts: lower means the text looks more familiar."""
    model.eval()
    total, count = 0.0, 0
    for block in text_blocks(texts, tokenizer, block_size):
        ids = torch.tensor([block["input_ids"]], device=model.device)
        total += model(input_ids=ids, labels=ids).loss.item() * (ids.shape[1] - 1)
        count += ids.shape[1] - 1
    return float(torch.exp(torch.tensor(total / count)))


@torch.no_grad()
def answer_perplexity(model, tokenizer, prompts: list, answers: list[str]) -> float:
    """Perplexity of the expected answers (and their turn end) given their prompts: only the last
    answer counts, not the prompt nor the earlier answers of a conversation."""
    model.eval()
    total, count = 0.0, 0
    for prompt, expected in zip(prompts, answers):
        example = training_example(tokenizer, as_messages(prompt) + [{"role": "assistant", "content": expected}])
        start = len(prompt_ids(tokenizer, prompt))
        labels = torch.tensor([[IGNORE_INDEX] * start + example["labels"][start:]], device=model.device)
        scored = int((labels[:, 1:] != IGNORE_INDEX).sum())
        loss = model(input_ids=torch.tensor([example["input_ids"]], device=model.device), labels=labels).loss
        total, count = total + loss.item() * scored, count + scored
    return float(torch.exp(torch.tensor(total / count)))


@torch.no_grad()
def weighted_number(model, tokenizer, prompts: list, k: int = 3, max_new_tokens: int = 16,
                    progress: str = "") -> list[float | None]:
    """Probability-weighted value of the k most likely answers (beam search), per prompt.

    Numbers are several tokens long here, so instead of the first token's top-k the k best whole
    answers are weighed by their sequence probabilities; answers without a number are left out.
    """
    if k == 1:
        return [parse_number(a) for a in answer(model, tokenizer, prompts, max_new_tokens=max_new_tokens)]
    ensure_pad_token(tokenizer)
    model.eval()
    values = []
    for prompt in tqdm(prompts, desc=progress, unit="問", disable=not progress):
        ids = torch.tensor([prompt_ids(tokenizer, prompt)], device=model.device)
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             num_beams=k, num_return_sequences=k, do_sample=False, length_penalty=0.0,
                             output_scores=True, return_dict_in_generate=True, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=stop_ids(tokenizer))
        weights = torch.softmax(out.sequences_scores.float(), dim=0).tolist()
        texts = [answer_text(tokenizer, row[ids.shape[1]:]) for row in out.sequences]
        parsed = [(w, parse_number(t)) for w, t in zip(weights, texts) if parse_number(t) is not None]
        mass = sum(w for w, _ in parsed)
        values.append(sum(w * v for w, v in parsed) / mass if parsed else None)
    return values


@torch.no_grad()
def reply(model, tokenizer, messages: list[dict], streamer=None, **generate_kwargs) -> tuple[str, int, int, str]:
    """The next assistant message of a conversation: (text, prompt tokens, new tokens, finish reason).

    The finish reason is "stop" when the model ended its turn (a stop id), "length" when it ran out
    of `max_new_tokens`. `streamer` (e.g. `TextStreamer`) shows the tokens as they are generated.
    """
    ensure_pad_token(tokenizer)
    model.eval()
    ids, stops = torch.tensor([prompt_ids(tokenizer, messages)], device=model.device), stop_ids(tokenizer)
    kwargs = {"max_new_tokens": 64, "do_sample": False} | generate_kwargs
    output = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), pad_token_id=tokenizer.pad_token_id,
                            eos_token_id=stops, streamer=streamer, **kwargs)[0, ids.shape[1]:].tolist()
    stopped = any(token in stops for token in output)
    return answer_text(tokenizer, output), ids.shape[1], len(output), "stop" if stopped else "length"
