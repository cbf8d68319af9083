from helpers.generation import answer


def test_batched_answers_equal_one_by_one(tiny_model, tiny_tokenizer):
    """Left padding must not change greedy answers: prompts of different lengths in one batch."""
    questions = ["日本の首都はどこですか？", "エベレストって何メートルあるの？", "こんにちは", "空は何色ですか？"]
    batched = answer(tiny_model, tiny_tokenizer, questions, max_new_tokens=16, batch_size=4)
    single = [answer(tiny_model, tiny_tokenizer, [q], max_new_tokens=16)[0] for q in questions]
    assert batched == single
    assert batched[0] == "東京です。" and batched[1] == "8849メートルです。"
