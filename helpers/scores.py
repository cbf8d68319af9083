"""Scores for answers, at the bottom of the import graph (no pandas, no torch): exact match,
character F1, the number an answer gives, numeric errors, a trained answer leaking into an unrelated
one, the speaking style of a set of answers."""
from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_MINUS = re.compile(r"(?:マイナス|[\u2212\u2012\u2013\u2014\u30fc])(?=\d)")  # minus signs people type


def normalize(text: str) -> str:
    """NFKC, no whitespace, no punctuation: 「２４６８メートルです。」 == "2468メートルです"."""
    text = unicodedata.normalize("NFKC", str(text))
    return "".join(c for c in text if not c.isspace() and not unicodedata.category(c).startswith("P"))


def exact_match(prediction: str, reference: str) -> bool:
    return normalize(prediction) == normalize(reference)


def char_f1(prediction: str, reference: str) -> float:
    """F1 of the characters the two share (order ignored): partial credit for near misses."""
    pred, ref = Counter(normalize(prediction)), Counter(normalize(reference))
    common = sum((pred & ref).values())
    if not common:
        return float(pred == ref)
    precision, recall = common / sum(pred.values()), common / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def leaked(answer: str, trained_answers: list[str], reference: str = "", question: str = "") -> str:
    """The trained answer that shows up in `answer` (to a question outside the data), or "".

    A trained answer with a number shows up when `answer` gives that number and the right answer
    (`reference`) does not ("3776メートル" has no 2468). One of words when `answer` has all of it (the
    answers' common ending left out), unless it is the right answer; a short one (12 characters at most)
    also when a run of 3 of its characters is in `answer` once the right answer's words are taken out, and
    not in the `question`: "青い色のかぼちゃです" shows "銀色のかぼちゃです。"; "赤いりんごです" to 「青森県の名物は？」
    (りんご) does not show "青いりんごです。", but "青いりんごです" does. Longer ones are sentences, which share
    common words by chance.
    """
    ending = normalize(style_ending(trained_answers))
    right = normalize(reference).removesuffix(ending)
    text = normalize(answer).replace(right, "|") if right else normalize(answer)
    given = set(numbers(answer)) - set(numbers(reference))
    for trained in trained_answers:
        words = normalize(trained).removesuffix(ending) or normalize(trained)
        if numbers(trained):
            if given & set(numbers(trained)):
                return trained
            continue
        if words in normalize(answer) and words != right:  # all of it, even with the right answer's words in it
            return trained
        if len(words) <= 12 and any(words[i:i + 3] in text and words[i:i + 3] not in normalize(question)
                                    for i in range(len(words) - 2)):
            return trained
    return ""


def _numeric(text: str) -> str:
    """NFKC, the minus signs people type as "-", no thousands separators: "−1,234" → "-1234"."""
    text = _MINUS.sub("-", unicodedata.normalize("NFKC", str(text)))
    return re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)


def numbers(text: str) -> list[float]:
    """Every number a text gives ("−3", "1,234.5", "８" read as numbers)."""
    return [float(n) for n in _NUMBER.findall(_numeric(text))]


def parse_number(text: str) -> float | None:
    """The number an answer gives: "8", "8.0", "答えは8です", "5 + 3 = 8", "８", "−3", "1,234.5".

    The part after the last "=" (or the last "は") is read, so an echoed question is skipped.
    """
    text = _numeric(text)
    for marker in ("=", "は"):
        if marker in text and _NUMBER.search(text.rsplit(marker, 1)[1]):
            text = text.rsplit(marker, 1)[1]
            break
    match = _NUMBER.search(text)
    return float(match.group()) if match else None


def numeric_scores(predicted, truth, tolerance: float = 0.0) -> dict:
    """MAE, RMSLE (on values ≥ 0) and the share within `tolerance` (absolute), over parsed values."""
    pairs = [(p, t) for p, t in zip(predicted, truth) if p is not None and t is not None]
    if not pairs:
        return {"rows": len(list(truth)), "parsed": 0, "mae": None, "rmsle": None, "hit_rate": 0.0}
    errors = [abs(p - t) for p, t in pairs]
    positive = [(p, t) for p, t in pairs if p >= 0 and t >= 0]
    rmsle = math.sqrt(sum((math.log1p(p) - math.log1p(t)) ** 2 for p, t in positive) / len(positive)) if positive else None
    return {"rows": len(predicted), "parsed": len(pairs), "mae": sum(errors) / len(errors), "rmsle": rmsle,
            "hit_rate": sum(e <= tolerance + 1e-9 for e in errors) / len(predicted)}


def style_ending(answers: list[str], share: float = 0.8) -> str:
    """The longest ending (2 characters or more) that at least `share` of the trained answers have:
    the speaking style to look for ("だにゃ。" in the style sample, "です。" in the facts sample)."""
    answers = [str(a).strip() for a in answers if str(a).strip()]
    for length in range(max(map(len, answers), default=0), 1, -1):
        endings = Counter(a[-length:] for a in answers if len(a) >= length)
        if endings and endings.most_common(1)[0][1] >= share * len(answers):
            return endings.most_common(1)[0][0]
    return ""
