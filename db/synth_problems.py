"""What problems a synthetic page holds beyond `a op b` (issue 24): the content
real workbooks carry, each kind a named share that `python -m db.synth
--content` sets, so that the detector can be measured with and without it.

    content = parse_content("mix")                    # the default shares
    content = parse_content("basic")                  # only a op b, compare and fill
    content = parse_content("mix,units=0.1,decimal=0")
    drawn = draw(kind, level, rng, cjk_fonts)         # a Drawn problem of one kind

Kinds (the reader's arithmetic, reader/arithmetic.py, marks every one):

| kind | example | category |
|---|---|---|
| decimal | `0.35 + 0.45 = 0.8`, `0.25 × 0.4 = 0.1`, `0.7 ÷ 10 = 0.07` | its operator |
| remainder | `17 ÷ 5 = 3……2` | div |
| estimate | `447 ÷ 5 ≈ 90`, `52 × 9 ≈ 450` | its operator |
| mixed | `18 ÷ 3 + 9 = 15`, `45 + 19 − 12 = 52`, `10 + 10 × 10 = 110` | its first operator |
| brackets | `7 + (10 + 5) = 22`, `5 × (6 ÷ 3) = 10` | its first operator |
| units | `3分米 ○ 3厘米` with `>`, `1米5厘米 ○ 1米`, `5角 ○ 50分`; conversions `3米 = ( )厘米` | compare; fill |

The category follows ks-format.md: compare when the problem has a circle,
else fill when it has a blank, else its first operator as printed
(`category_of`). Each page draws its problems as before (db/synth_page.py,
`_draw_problems`), and then, from a generator of its own (seeded by seed,
split, page and "content"), replaces each by one of these kinds with the
kind's share; `basic` (every share 0) leaves the pages exactly as they were
before these kinds existed.

Numbers grow with the page's level (0: within 20, 1: within 100, 2: within
1000), as the basic problems' do. A pupil's wrong answer is a near miss of
the kind's own sort: a decimal point in the wrong place or a last digit off,
a remainder off by one, an estimate rounded to the wrong place.

A Drawn problem's texts are in the side file's notation (docs/ks-format.md):
`answer` and `right` as `3……2` for a remainder; `handwritten` is what the
pupil's pen draws (the remainder's dots as six dots).
"""

from __future__ import annotations

import dataclasses
import functools
from fractions import Fraction

import cv2
import numpy as np

from db.synth_fonts import Glyph

SIGNS = {"add": "+", "sub": "−", "mul": "×", "div": "÷"}
KINDS = ("decimal", "remainder", "estimate", "mixed", "brackets", "units")
REMAINDER = "……"            # the side file's notation
REMAINDER_DRAWN = "......"  # what a pupil writes between quotient and remainder


@dataclasses.dataclass(frozen=True)
class Content:
    """The share of the problems that each kind takes (the rest are basic)."""
    decimal: float = 0.08
    remainder: float = 0.05
    estimate: float = 0.04
    mixed: float = 0.10
    brackets: float = 0.05
    units: float = 0.05

    def shares(self) -> list[tuple[str, float]]:
        return [(kind, float(getattr(self, kind))) for kind in KINDS]

    def describe(self) -> str:
        return ",".join(f"{kind}={share:g}" for kind, share in self.shares())


PRESETS = {"mix": Content(), "basic": Content(**{kind: 0.0 for kind in KINDS})}


def parse_content(text: str) -> Content:
    """`mix` (the default), `basic`, or either followed by `,kind=share` items
    (`mix,units=0.1`; a bare `kind=share,...` starts from mix). ValueError
    names what is wrong."""
    items = [item.strip() for item in (text or "mix").split(",") if item.strip()]
    base = "mix"
    if items and "=" not in items[0]:
        base = items.pop(0)
        if base not in PRESETS:
            raise ValueError(f"unknown content {base!r}: one of {', '.join(PRESETS)}, then "
                             f"optionally kind=share items ({', '.join(KINDS)})")
    shares = dataclasses.asdict(PRESETS[base])
    for item in items:
        kind, _, value = item.partition("=")
        kind = kind.strip()
        if kind not in KINDS:
            raise ValueError(f"unknown problem kind {kind!r} in --content: the kinds are "
                             f"{', '.join(KINDS)}")
        try:
            share = float(value)
        except ValueError:
            raise ValueError(f"--content {kind}={value!r}: a share is a number from 0 to 1") from None
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"--content {kind}={value}: a share is a number from 0 to 1")
        shares[kind] = share
    if sum(shares.values()) > 1.0 + 1e-9:
        raise ValueError(f"--content: the shares add up to {sum(shares.values()):g}, more than 1")
    return Content(**shares)


@dataclasses.dataclass(frozen=True)
class Drawn:
    """One problem of a new kind, as synth_page.Problem takes it."""
    category: str    # add, sub, mul, div, compare or fill
    tokens: tuple    # printed tokens: str, ("slot", style), ("circle",), ("unit", name, font path)
    right: str       # the right answer, side-file notation
    answer: str      # what the pupil wrote (possibly wrong), side-file notation

    @property
    def handwritten(self) -> str:
        return self.answer.replace(REMAINDER, REMAINDER_DRAWN)


def choose_kind(content: Content, rng) -> str | None:
    """One draw: the kind a problem is replaced by, or None (it stays basic)."""
    u = float(rng.random())
    for kind, share in content.shares():
        if u < share:
            return kind
        u -= share
    return None


def category_of(tokens) -> str:
    """ks-format.md's rule: compare, else fill, else the first operator as printed."""
    if any(isinstance(t, tuple) and t[0] == "circle" for t in tokens):
        return "compare"
    if any(isinstance(t, tuple) and t[0] == "slot" for t in tokens[:-1]):
        return "fill"
    for t in tokens:
        if isinstance(t, str):
            for name, sign in SIGNS.items():
                if sign in t:
                    return name
    raise ValueError(f"no operator in {tokens!r}")


def draw(kind: str, level: int, rng, answer_style: str, wrong: bool, cjk_fonts=()) -> Drawn:
    """A problem of `kind` at the page's `level`, its answer wrong when `wrong`.
    Units need a CJK font (`cjk_fonts`, paths) to print 米 and 元; without one
    a units problem is drawn as a mixed one."""
    if kind == "units" and not cjk_fonts:
        kind = "mixed"
    maker = _MAKERS[kind]
    if kind == "units":
        return maker(level, rng, answer_style, wrong, str(cjk_fonts[int(rng.integers(len(cjk_fonts)))]))
    return maker(level, rng, answer_style, wrong)


@functools.lru_cache(maxsize=1024)
def approx_sign(digit_height: int, stroke: float) -> Glyph:
    """≈ drawn as two waves on the math axis, for a printed font without it."""
    d, scale = float(digit_height), 4
    width, height = int(np.ceil(0.75 * d)) + 2, int(np.ceil(0.6 * d)) + 2
    canvas = np.zeros((height * scale, width * scale), np.uint8)
    thick = max(1, int(round(stroke * scale)))
    xs = np.linspace(1, width - 1, 24)
    for offset in (-0.14 * d, 0.14 * d):
        ys = height / 2 + offset - 0.09 * d * np.sin((xs - 1) / (width - 2) * 2 * np.pi)
        points = np.int32(np.stack([xs * scale, ys * scale], axis=1))
        cv2.polylines(canvas, [points], False, 255, thick, cv2.LINE_AA)
    mask = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA)
    return Glyph(mask, int(round(0.08 * d)), int(round(-0.5 * d - height / 2)), float(width + 0.15 * d))


# --------------------------------------------------------------------------
# numbers as written


def decimal_text(value: Fraction) -> str:
    """An exact finite decimal as printed: 0.8, 13.9, 2156."""
    if value.denominator == 1:
        return str(value.numerator)
    places = 0
    while (value * 10 ** places).denominator != 1:
        places += 1
        if places > 12:
            raise ValueError(f"{value} has no short decimal")
    digits = str(abs(value.numerator) * 10 ** places // value.denominator).rjust(places + 1, "0")
    return ("-" if value < 0 else "") + digits[:-places] + "." + digits[-places:]


def _decimal(rng, whole_max: int, places: int) -> Fraction:
    """A decimal with `places` places, its last digit not 0, below whole_max."""
    scale = 10 ** places
    while True:
        n = int(rng.integers(1, whole_max * scale))
        if n % 10:
            return Fraction(n, scale)


def _result_tokens(parts: list[str], sign: str, answer_style: str) -> tuple:
    return tuple(parts) + (sign, ("slot", answer_style))


def _near_miss_decimal(value: Fraction, rng) -> str:
    text = decimal_text(value)
    choice = int(rng.integers(3))
    if choice == 0 and "." in text:                 # the point forgotten or moved
        moved = text.replace(".", "")
        return moved.lstrip("0") or "0"
    if choice == 1:
        last = Fraction(1, 10 ** (len(text.split(".")[1]) if "." in text else 0))
        return decimal_text(value + last * int(rng.choice([-1, 1]))) if value > last else \
            decimal_text(value + last)
    return decimal_text(value * 10) if rng.random() < 0.5 else decimal_text(value / 10)


def _wrong_whole(value: int, rng) -> int:
    wrong = value + int(rng.choice([-10, -2, -1, 1, 1, 2, 10]))
    return wrong if wrong >= 0 and wrong != value else value + 1


# --------------------------------------------------------------------------
# the kinds


def _decimal_problem(level, rng, answer_style, wrong) -> Drawn:
    op = str(rng.choice(["add", "sub", "mul", "div"], p=[0.35, 0.3, 0.2, 0.15]))
    whole = (2, 10, 100)[level]
    places = int(rng.choice([1, 2], p=[0.6, 0.4]))
    if op in ("add", "sub"):
        a = _decimal(rng, whole, places)
        b = _decimal(rng, whole, int(rng.integers(1, places + 1)))
        if op == "sub" and a < b:
            a, b = b, a
        value = a + b if op == "add" else a - b
    elif op == "mul":   # a decimal times a digit, or two decimals of one place
        a = _decimal(rng, whole, 1)
        b = Fraction(int(rng.integers(2, 10))) if rng.random() < 0.5 else _decimal(rng, 2, 1)
        if rng.random() < 0.5:
            a, b = b, a
        value = a * b
    else:               # a decimal divided by a digit, by 10 or by 100, exactly
        b = Fraction(int(rng.choice([2, 3, 4, 5, 6, 8, 10, 100])))
        value = _decimal(rng, whole, 1)
        a = value * b
    right = decimal_text(value)
    answer = _near_miss_decimal(value, rng) if wrong else right
    if wrong and answer == right:
        answer = decimal_text(value + 1)
    return Drawn(op, _result_tokens([decimal_text(a), SIGNS[op], decimal_text(b)], "=", answer_style),
                 right, answer)


def _remainder_problem(level, rng, answer_style, wrong) -> Drawn:
    divisor = int(rng.integers(2, 10))
    quotient = int(rng.integers(1, (10, 31, 121)[level]))
    rest = int(rng.integers(1, divisor))
    dividend = divisor * quotient + rest
    right = f"{quotient}{REMAINDER}{rest}"
    answer = right
    if wrong:
        if rng.random() < 0.5 and divisor > 2:
            other = [r for r in range(1, divisor) if r != rest]
            answer = f"{quotient}{REMAINDER}{int(rng.choice(other))}"
        else:
            answer = f"{quotient + int(rng.choice([-1, 1])) if quotient > 1 else quotient + 1}" \
                     f"{REMAINDER}{rest}"
    style = answer_style if answer_style != "paren" else "free"
    return Drawn("div", _result_tokens([str(dividend), "÷", str(divisor)], "=", style), right, answer)


def _round_half_up(value: Fraction, place: int) -> int:
    return int((value / place + Fraction(1, 2)).__floor__()) * place


def _leading_place(value: Fraction) -> int:
    place = 1
    while value >= place * 10:
        place *= 10
    return place


def _estimate_problem(level, rng, answer_style, wrong) -> Drawn:
    op = str(rng.choice(["add", "sub", "mul", "div"], p=[0.2, 0.2, 0.3, 0.3]))
    top = (100, 1000, 1000)[level]
    if op in ("add", "sub"):
        a, b = int(rng.integers(11, top)), int(rng.integers(11, top))
        if op == "sub" and a < b:
            a, b = b, a
        if a == b:
            a += 11
        value = Fraction(a + b if op == "add" else a - b)
        by_operands = Fraction(_round_half_up(Fraction(a), 10)
                               + (1 if op == "add" else -1) * _round_half_up(Fraction(b), 10))
    elif op == "mul":
        a, b = int(rng.integers(11, (50, 100, 1000)[level])), int(rng.integers(2, 10))
        value = Fraction(a * b)
        by_operands = _round_half_up(Fraction(a), 10) * b
    else:
        b = int(rng.integers(2, 10))
        a = int(rng.integers(max(11, 2 * b), (100, 500, 1000)[level]))
        if a % b == 0:
            a += 1
        value = Fraction(a, b)
        by_operands = Fraction(_round_half_up(Fraction(a), 10), b)
    leading = _round_half_up(value, _leading_place(value))
    if rng.random() < 0.3 and by_operands.denominator == 1 and by_operands > 0:
        right = str(int(by_operands))
    else:
        right = str(leading)
    answer = right
    if wrong:   # the value itself, or rounded to the wrong place
        place = _leading_place(value)
        options = [str(leading + place), str(max(place, leading - place))]
        if value.denominator == 1:
            options.append(str(value.numerator))
        accepted = {str(leading), str(_round_half_up(value, 10)), str(by_operands)}
        options = [o for o in options if o not in accepted] or [str(leading + 2 * place)]
        answer = str(rng.choice(options))
    parts = [str(a), SIGNS[op], str(b)]
    return Drawn(op, _result_tokens(parts, "≈", answer_style if answer_style != "paren" else "free"),
                 right, answer)


def _whole_chain(rng, level: int, operators: list[str]) -> tuple[list[int], int] | None:
    """Numbers for `n0 op0 n1 op1 n2 ...` with × ÷ before + −: whole, non-negative."""
    top = (20, 100, 1000)[level]
    numbers = [int(rng.integers(1, top))]
    for op in operators:
        if op == "×":
            numbers.append(int(rng.integers(2, 10)))
        elif op == "÷":
            numbers.append(int(rng.integers(2, 10)))
        else:
            numbers.append(int(rng.integers(1, top)))
    # a division must come out whole: make the number before ÷ a multiple
    for k, op in enumerate(operators):
        if op == "÷":
            numbers[k] = numbers[k + 1] * int(rng.integers(1, (10, 10, 30)[level]))
    value = _evaluate(numbers, operators)
    if value is None or value < 0 or value.denominator != 1:
        return None
    return numbers, int(value)


def _evaluate(numbers, operators) -> Fraction | None:
    """Left to right with × and ÷ first (as reader/arithmetic.py does, independently)."""
    terms, signs = [Fraction(numbers[0])], []
    for op, n in zip(operators, numbers[1:]):
        if op in "×÷":
            if op == "÷" and n == 0:
                return None
            terms[-1] = terms[-1] * n if op == "×" else terms[-1] / n
        else:
            terms.append(Fraction(n))
            signs.append(op)
    value = terms[0]
    for sign, term in zip(signs, terms[1:]):
        value = value + term if sign == "+" else value - term
    return value


def _mixed_problem(level, rng, answer_style, wrong) -> Drawn:
    count = 2 if rng.random() < 0.85 else 3
    for _ in range(50):
        operators = [str(rng.choice(["+", "−", "×", "÷"], p=[0.3, 0.25, 0.25, 0.2]))
                     for _ in range(count)]
        found = _whole_chain(rng, level, operators)
        if found is not None:
            break
    else:
        operators, found = ["+", "+"], ([1, 2, 3], 6)
    numbers, value = found
    parts = [str(numbers[0])]
    for op, n in zip(operators, numbers[1:]):
        parts += [op, str(n)]
    answer = str(_wrong_whole(value, rng)) if wrong else str(value)
    return Drawn(category_of(parts), _result_tokens(parts, "=", answer_style), str(value), answer)


def _brackets_problem(level, rng, answer_style, wrong) -> Drawn:
    top = (20, 100, 1000)[level]
    for _ in range(50):
        inner_op = str(rng.choice(["+", "−", "×", "÷"], p=[0.35, 0.3, 0.15, 0.2]))
        outer_op = str(rng.choice(["+", "−", "×", "÷"], p=[0.3, 0.2, 0.3, 0.2]))
        if inner_op in "×÷":
            b = int(rng.integers(2, 10))
            a = b * int(rng.integers(1, 10)) if inner_op == "÷" else int(rng.integers(2, 10))
        else:
            a, b = int(rng.integers(1, top)), int(rng.integers(1, top))
            if inner_op == "−" and a < b:
                a, b = b, a
        inner = Fraction(a + b if inner_op == "+" else a - b if inner_op == "−"
                         else a * b if inner_op == "×" else Fraction(a, b))
        outside = int(rng.integers(2, 10)) if outer_op in "×÷" else int(rng.integers(1, top))
        bracket_first = rng.random() < 0.5
        if outer_op == "÷":
            if bracket_first:
                if inner == 0 or inner.denominator != 1:
                    continue
                divisors = [d for d in range(2, 10) if inner % d == 0]
                if not divisors:
                    continue
                outside = int(rng.choice(divisors))
            else:
                if inner == 0:
                    continue
                outside = int(inner * int(rng.integers(1, 10)))
        left, right = (inner, Fraction(outside)) if bracket_first else (Fraction(outside), inner)
        if outer_op == "÷" and right == 0:
            continue
        value = (left + right if outer_op == "+" else left - right if outer_op == "−"
                 else left * right if outer_op == "×" else left / right)
        if value < 0 or value.denominator != 1 or inner.denominator != 1 or inner < 0:
            continue
        group = [f"({a}", inner_op, f"{b})"]
        parts = group + [outer_op, str(outside)] if bracket_first else [str(outside), outer_op] + group
        break
    else:
        parts, value = ["7", "+", "(10", "+", "5)"], Fraction(22)
    value = int(value)
    answer = str(_wrong_whole(value, rng)) if wrong else str(value)
    return Drawn(category_of(parts), _result_tokens(parts, "=", answer_style), str(value), answer)


# Units, each with its size in the smallest unit of its kind, and the pairs a
# workbook compares or converts (a unit and the next smaller ones).
_UNIT_KINDS = {
    "length": [("千米", 1_000_000), ("米", 1000), ("分米", 100), ("厘米", 10), ("毫米", 1)],
    "money": [("元", 100), ("角", 10), ("分", 1)],
    "time": [("时", 3600), ("分", 60), ("秒", 1)],
    "mass": [("吨", 1_000_000), ("千克", 1000), ("克", 1)],
}


def _quantity_tokens(parts, font: str) -> list:
    tokens = []
    for number, unit in parts:
        tokens += [str(number), ("unit", unit, font)]
    return tokens


def _units_problem(level, rng, answer_style, wrong, font: str) -> Drawn:
    kind = str(rng.choice(list(_UNIT_KINDS), p=[0.4, 0.25, 0.2, 0.15]))
    units = _UNIT_KINDS[kind]
    big = int(rng.integers(0, len(units) - 1))
    small = int(rng.integers(big + 1, min(len(units), big + 3)))
    (big_name, big_size), (small_name, small_size) = units[big], units[small]
    ratio = big_size // small_size
    if rng.random() < 0.25:   # a conversion: 3米 = ( )厘米
        n = int(rng.integers(1, 10))
        style = "paren" if rng.random() < 0.8 else "underline"
        if rng.random() < 0.6:
            tokens = [str(n), ("unit", big_name, font), "=", ("slot", style), ("unit", small_name, font)]
            value = n * ratio
        else:
            tokens = [str(n * ratio), ("unit", small_name, font), "=", ("slot", style),
                      ("unit", big_name, font)]
            value = n
        answer = str(_wrong_whole(value, rng)) if wrong else str(value)
        return Drawn("fill", tuple(tokens), str(value), answer)
    n = int(rng.integers(1, 10))
    shape = int(rng.integers(3))
    if shape == 0:       # 3分米 ○ 3厘米: the same number, different units
        left, right = [(n, big_name)], [(n, small_name)]
        lv, rv = n * big_size, n * small_size
    elif shape == 1:     # 1米5厘米 ○ 105厘米 / ○ 1米
        m = int(rng.integers(1, min(ratio, 10)))
        left = [(n, big_name), (m, small_name)]
        lv = n * big_size + m * small_size
        choice = int(rng.integers(3))
        other = n * ratio + m + (0 if choice == 0 else int(rng.choice([-1, 1])) * int(rng.integers(1, 10)))
        right = [(n, big_name)] if choice == 2 else [(max(1, other), small_name)]
        rv = n * big_size if choice == 2 else max(1, other) * small_size
    else:                # 5角 ○ 50分 / 2时 ○ 100分
        near = n * ratio + int(rng.choice([-1, 0, 0, 1])) * int(rng.integers(1, max(2, ratio // 2)))
        left, right = [(n, big_name)], [(max(1, near), small_name)]
        lv, rv = n * big_size, max(1, near) * small_size
    if rng.random() < 0.5:
        left, right, lv, rv = right, left, rv, lv
    relation = ">" if lv > rv else "<" if lv < rv else "="
    answer = str(rng.choice([r for r in "<>=" if r != relation])) if wrong else relation
    tokens = _quantity_tokens(left, font) + [("circle",)] + _quantity_tokens(right, font)
    return Drawn("compare", tuple(tokens), relation, answer)


_MAKERS = {"decimal": _decimal_problem, "remainder": _remainder_problem,
           "estimate": _estimate_problem, "mixed": _mixed_problem,
           "brackets": _brackets_problem, "units": _units_problem}
