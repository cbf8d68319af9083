"""Answer questions (or continue texts) with `model.generate`; perplexity of texts."""
from __future__ import annotations

import torch

from .prompts import (IGNORE_INDEX, build_example, encode_prompt, ensure_pad_token, format_chat, format_prompt,
                      text_blocks)


@torch.no_grad()
def answer(model, tokenizer, questions: list[str], max_new_tokens: int = 64, batch_size: int = 8,
           chat: bool = True, **generate_kwargs) -> list[str]:
    """Greedy answers (unless sampling options are given), prompt removed, whitespace stripped.

    `chat=False` continues each text as it is, without the chat template (text mode).
    """
    ensure_pad_token(tokenizer)
    model.eval()
    answers = []
    for start in range(0, len(questions), batch_size):
        encoded = [encode_prompt(tokenizer, format_prompt(tokenizer, q) if chat else q)
                   for q in questions[start:start + batch_size]]
        width = max(map(len, encoded))
        pad = tokenizer.pad_token_id  # left padding: every prompt ends where generation starts
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in encoded])
        attention_mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in encoded])
        output = model.generate(input_ids=input_ids.to(model.device),
                                attention_mask=attention_mask.to(model.device),
                                max_new_tokens=max_new_tokens, pad_token_id=pad,
                                **({"do_sample": False} | generate_kwargs))
        answers += [tokenizer.decode(row[width:], skip_special_tokens=True).strip() for row in output]
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
def answer_perplexity(model, tokenizer, questions: list[str], answers: list[str]) -> float:
    """Perplexity of the expected answers given their prompts (prompt tokens not counted)."""
    model.eval()
    total, count = 0.0, 0
    for question, expected in zip(questions, answers):
        example = build_example(tokenizer, question, expected, 10**6)
        labels = torch.tensor([example["labels"]], device=model.device)
        scored = int((labels[:, 1:] != IGNORE_INDEX).sum())
        loss = model(input_ids=torch.tensor([example["input_ids"]], device=model.device), labels=labels).loss
        total, count = total + loss.item() * scored, count + scored
    return float(torch.exp(torch.tensor(total / count)))


@torch.no_grad()
def weighted_number(model, tokenizer, questions: list[str], k: int = 3, max_new_tokens: int = 16) -> list[float | None]:
    """Probability-weighted value of the k most likely answers (beam search), per question.

    Numbers are several tokens long here, so instead of the first token's top-k the k best whole
    answers are weighed by their sequence probabilities; answers without a number are left out.
    """
    from .evaluate import parse_number

    if k == 1:
        return [parse_number(a) for a in answer(model, tokenizer, questions, max_new_tokens=max_new_tokens)]
    ensure_pad_token(tokenizer)
    model.eval()
    values = []
    for question in questions:
        ids = torch.tensor([encode_prompt(tokenizer, format_prompt(tokenizer, question))], device=model.device)
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             num_beams=k, num_return_sequences=k, do_sample=False, length_penalty=0.0,
                             output_scores=True, return_dict_in_generate=True, pad_token_id=tokenizer.pad_token_id)
        weights = torch.softmax(out.sequences_scores.float(), dim=0).tolist()
        texts = tokenizer.batch_decode(out.sequences[:, ids.shape[1]:], skip_special_tokens=True)
        parsed = [(w, parse_number(t)) for w, t in zip(weights, texts) if parse_number(t) is not None]
        mass = sum(w for w, _ in parsed)
        values.append(sum(w * v for w, v in parsed) / mass if parsed else None)
    return values


@torch.no_grad()
def reply(model, tokenizer, messages: list[dict], streamer=None, **generate_kwargs) -> tuple[str, int, int, str]:
    """The next assistant message of a conversation: (text, prompt tokens, new tokens, finish reason).

    `streamer` (e.g. `TextStreamer`) shows the tokens as they are generated.
    """
    ensure_pad_token(tokenizer)
    model.eval()
    ids = torch.tensor([encode_prompt(tokenizer, format_chat(tokenizer, messages))], device=model.device)
    kwargs = {"max_new_tokens": 64, "do_sample": False} | generate_kwargs
    output = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), pad_token_id=tokenizer.pad_token_id,
                            streamer=streamer, **kwargs)[0, ids.shape[1]:]
    stopped = len(output) and output[-1].item() == tokenizer.eos_token_id
    finish = "stop" if stopped or len(output) < kwargs["max_new_tokens"] else "length"
    return tokenizer.decode(output, skip_special_tokens=True).strip(), ids.shape[1], len(output), finish
