from types import SimpleNamespace

import torch

from helpers.generation import answer, answer_perplexity
from helpers.prompts import IGNORE_INDEX, qa_messages


def test_batched_answers_equal_one_by_one(tiny_model, tiny_tokenizer):
    """Left padding must not change greedy answers: prompts of different lengths in one batch."""
    questions = ["日本の首都はどこですか？", "エベレストって何メートルあるの？", "こんにちは", "空は何色ですか？"]
    batched = answer(tiny_model, tiny_tokenizer, questions, max_new_tokens=16, batch_size=4)
    single = [answer(tiny_model, tiny_tokenizer, [q], max_new_tokens=16)[0] for q in questions]
    assert batched == single
    assert batched[0] == "東京です。" and batched[1] == "8849メートルです。"


def test_answer_perplexity_scores_only_the_last_answer_of_a_conversation(tiny_tokenizer):
    """The earlier answers of a conversation are context, not what is being measured."""
    seen = []

    class Recorder:
        device = torch.device("cpu")

        def eval(self):
            return self

        def __call__(self, input_ids, labels):
            seen.append(labels[0].tolist())
            return SimpleNamespace(loss=torch.tensor(1.0))

    prompt = qa_messages("こんにちは", "こんにちは。ご用件をどうぞ。") + [{"role": "user", "content": "日本の首都は？"}]
    assert answer_perplexity(Recorder(), tiny_tokenizer, [prompt], ["東京です。"]) == torch.exp(torch.tensor(1.0)).item()
    scored = [label for label in seen[0] if label != IGNORE_INDEX]
    assert tiny_tokenizer.decode(scored) == "東京です。</s>"
