"""Arithmetic generator: disjoint train/test, operand ranges, answers checked independently."""
import re
from fractions import Fraction

import pytest

from helpers.arithmetic import Spec, generate
from helpers.errors import TutorialError

pytestmark = pytest.mark.unit  # offline, quick, nothing built or fetched (make test-unit)

NUMBER = r"\(?(-?\d+(?:\.\d+)?)\)?"
PATTERNS = {"symbolic": re.compile(rf"^{NUMBER} ([+\-×÷]) {NUMBER} =$"),
            "japanese": re.compile(rf"^{NUMBER}(たす|ひく|かける|わる){NUMBER}は？$")}
WORDS = {"たす": "+", "ひく": "-", "かける": "×", "わる": "÷"}


def parse(row, style):
    a, op, b = PATTERNS[style].match(row["instruction"]).groups()
    return Fraction(a), WORDS.get(op, op), Fraction(b)


def true_value(a, op, b):
    return {"+": a + b, "-": a - b, "×": a * b, "÷": a / b if b else None}[op]


SPECS = [
    Spec(),
    Spec(style="japanese", negatives=True),
    Spec(operations="×÷", a_digits="2", b_digits="1"),
    Spec(decimal_places=1, negatives=True, operations="+-×"),
    Spec(operations="÷", division="round", round_places=2, a_digits="1-2", b_digits="1-2"),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.operations}-{s.style}-{s.division}-dp{s.decimal_places}")
def test_problems_are_disjoint_in_range_and_exact(spec):
    train, test = generate(150, 50, spec, seed=3)
    assert len(train) == 150 and len(test) == 50
    assert not {r["instruction"] for r in train} & {r["instruction"] for r in test}
    assert len({r["instruction"] for r in train + test}) == 200
    for row in train + test:
        a, op, b = parse(row, spec.style)
        assert op in spec.operations
        for value, digits in ((a, spec.a_digits), (b, spec.b_digits)):
            low, _, high = digits.partition("-")
            assert int(low) <= len(str(int(abs(value)))) <= int(high or low), row
            assert spec.negatives or value >= 0
            assert value * 10 ** spec.decimal_places == int(value * 10 ** spec.decimal_places)
        truth = true_value(a, op, b)
        answer = Fraction(row["output"])
        if op == "÷" and spec.division == "round":
            assert abs(answer - truth) <= Fraction(1, 2 * 10 ** spec.round_places), row
        else:
            assert answer == truth, row
            if op == "÷":
                assert answer.denominator == 1 or spec.decimal_places


def test_same_seed_same_problems_other_seed_other_problems():
    assert generate(20, 5, Spec(), seed=1) == generate(20, 5, Spec(), seed=1)
    assert generate(20, 5, Spec(), seed=1) != generate(20, 5, Spec(), seed=2)


def test_mixed_digits_really_mix_and_negatives_appear():
    train, _ = generate(300, 0, Spec(a_digits="1-2", negatives=True, operations="+"), seed=0)
    widths = {len(str(abs(int(Fraction(r["a"]))))) for r in train}
    assert widths == {1, 2}
    assert any(Fraction(r["a"]) < 0 for r in train) and any(Fraction(r["a"]) > 0 for r in train)


def test_exact_division_uses_many_divisors():
    train, _ = generate(100, 0, Spec(operations="÷", a_digits="2", b_digits="1"), seed=0)
    assert len({r["b"] for r in train}) >= 7


def test_too_small_a_space_is_explained():
    with pytest.raises(TutorialError, match="100 問しか"):
        generate(150, 50, Spec(operations="+", a_digits="1", b_digits="1"))


@pytest.mark.parametrize("bad", [Spec(operations="^"), Spec(a_digits="two"), Spec(b_digits="3-1")])
def test_bad_settings_are_explained(bad):
    with pytest.raises(TutorialError):
        generate(5, 5, bad)
