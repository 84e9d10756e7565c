"""The arithmetic of a 口算 problem, exactly: what its printed text asks and
whether a handwritten answer is right.

    grade("12+7=", "19")          -> Grade("right", expected="19", kind="result")
    grade("0.35+0.45=", "0.8")    -> Grade("right", expected="0.8", kind="result")
    grade("17÷5=", "3……2")        -> Grade("right", expected="3……2", kind="result")
    grade("447÷5≈", "90")         -> Grade("right", expected="90", kind="estimate")
    grade("7+(10+5)=", "22")      -> Grade("right", expected="22", kind="result")
    grade("( )+5=7", "3")         -> Grade("wrong", expected="2", kind="fill")
    grade("3分米○3厘米", ">")      -> Grade("right", expected=">", kind="compare")
    grade("12+7=", "")            -> Grade("unanswered", expected="19", ...)
    grade("12+7=", "1>")          -> Grade("unreadable", reason="the answer '1>' is not a number")

The printed text is the `printed` field of ks_<split>_text.jsonl
(docs/ks-format.md, "What each box reads"): numbers (whole or decimal,
`0.35`), `+ − × ÷` with the usual precedence (× and ÷ before + and −, left to
right) and brackets `(` `)`, `=` or `≈`, `○` (the compare circle), the answer
blank `( )` or `_`, and units after numbers in compare problems (`1米5厘米`).
Four forms:
- result: `expression =` (optionally a blank after the `=`): the answer is the
  expression's value, a whole number or a decimal; a division of two whole
  numbers that does not come out whole is answered with its remainder,
  `17÷5=3……2` (the exact decimal, `3.4`, is right too);
- estimate: `expression ≈`: the answer is an estimate, right when it equals
  (a) the value rounded to its leading place (`447÷5≈90`: 89.4 -> 90;
  `389÷5≈80`; `52×9≈500`) or to tens (`52×9≈470`), or (b) the value of the
  expression with every operand of 10 or more rounded to tens, as textbooks
  estimate (`52×9≈450`: 50×9; `447÷5≈90`: 450÷5; `121÷3≈40`: 120÷3). The
  expected answer shown is (a)'s leading place. Rounding is half up. The one
  answered estimate of the real crops (`319÷4≈80`, bench/bench_real_crops.py)
  is right under both (a) and (b);
- fill: `expression = expression` with one blank on either side (`( )+5=7`,
  `7+( )×2=15`, `15=( )+7`), or a unit conversion `3米=( )厘米`: the answer
  is the missing number, graded by putting it in the blank (so `0×( )=0`
  takes any number);
- compare: `L ○ R`, each side an expression (`53−6○49`) or a quantity of one
  kind of unit (`3分米○3厘米`, `1米5厘米○1米`, `1元2角○12角`, `2时○100分`,
  `1千克○900克`): the answer is `>`, `<` or `=`. Length 千米 米 分米 厘米 毫米,
  money 元 角 分, time 时 (小时) 分 秒, mass 吨 千克 (公斤) 克; `分` is money
  or minutes as the problem's other units say.

Everything is exact: integers and fractions.Fraction, never floats (a
decimal is read from its digits). ASCII stand-ins are accepted for
hand-typed text: `-` for `−`, `*` and `x` for `×`, `/` and `:` for `÷`, `~`
for `≈`, `...` for `……`, full-width brackets.

A problem's category (Problem.category, the ks class, docs/ks-format.md) is
compare when it has a circle, else fill when it has a blank, else its first
operator as printed (`18÷3+9=` is div, `7+(10+5)=` add).

A decision is one of right, wrong, unanswered (nothing written) and
unreadable (the printed text is not one of the forms, or the answer is not of
the form the problem asks for); `reason` says why in words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

RIGHT, WRONG, UNANSWERED, UNREADABLE = "right", "wrong", "unanswered", "unreadable"
DECISIONS = (RIGHT, WRONG, UNANSWERED, UNREADABLE)
RELATIONS = (">", "<", "=")
KINDS = ("result", "estimate", "fill", "compare")
REMAINDER = "……"   # as a pupil writes it between quotient and remainder

_OPERATORS = {"+": "+", "−": "−", "-": "−", "×": "×", "*": "×", "x": "×", "X": "×",
              "÷": "÷", "/": "÷", ":": "÷"}
OPERATOR_NAMES = {"+": "add", "−": "sub", "×": "mul", "÷": "div"}

# Units: each name -> (kind, factor to the kind's smallest unit); "分" is either
# money (fen) or time (minutes), settled by the other units of the problem.
UNITS = {
    "千米": ("length", 1_000_000), "米": ("length", 1000), "分米": ("length", 100),
    "厘米": ("length", 10), "毫米": ("length", 1),
    "元": ("money", 100), "角": ("money", 10),
    "小时": ("time", 3600), "时": ("time", 3600), "秒": ("time", 1),
    "吨": ("mass", 1_000_000), "千克": ("mass", 1000), "公斤": ("mass", 1000), "克": ("mass", 1),
}
_AMBIGUOUS_UNIT = {"分": {"money": 1, "time": 60}}
UNIT_NAMES = tuple(sorted(set(UNITS) | set(_AMBIGUOUS_UNIT), key=len, reverse=True))

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<blank>[(（]\s*[)）]|_+)|(?P<open>[(（])|(?P<close>[)）])"
    r"|(?P<op>[+\-−×*xX÷/:])|(?P<equals>[=＝])|(?P<approx>[≈~～])|(?P<circle>[○◯])"
    r"|(?P<unit>" + "|".join(UNIT_NAMES) + "))")
_REMAINDER_ANSWER = re.compile(r"(\d+)\s*(?:…+|\.{3,}|。{2,})\s*(\d+)")
BLANK = "blank"


class NotAProblem(ValueError):
    """Printed text that is not one of the forms; the message says why."""


# An expression is a tree of tuples:
#   ("number", Fraction, "0.35")   ("blank",)   (op, left, right) with op in + − × ÷
#   ("quantity", ((number or blank node, unit name), ...))  a compare side or conversion


@dataclass(frozen=True)
class Problem:
    """A parsed printed problem.

    kind: result, estimate, fill or compare. `left` is the expression before
    `=`/`≈`/`○`; `right` the one after (None for result and estimate).
    `first_operator` is the first of + − × ÷ as printed (None for a bare
    number or quantity)."""
    kind: str
    left: tuple
    right: tuple | None = None
    first_operator: str | None = None

    @property
    def category(self) -> str:
        """The ks category name: compare, else fill, else the first operator's
        (add, sub, mul, div)."""
        if self.kind in ("compare", "fill"):
            return self.kind
        if self.first_operator is None:
            raise NotAProblem("a problem without an operator has no category")
        return OPERATOR_NAMES[self.first_operator]

    def value(self) -> Fraction:
        """The exact value of a result's or estimate's expression."""
        return _value(self.left)

    def expected(self) -> str | None:
        """The right answer as the pupil would write it; None when no single
        number is right (a fill blank that any number fills, `0×( )=0`).
        ArithmeticError when none is (a division by zero, a fill no number
        fills, a value with no finite decimal that is no whole division)."""
        if self.kind == "result":
            value = _value(self.left)
            division = _whole_division(self.left)
            if division is not None and value.denominator != 1:
                quotient, remainder = divmod(division[0], division[1])
                return f"{quotient}{REMAINDER}{remainder}"
            return _decimal_text(value, "the result")
        if self.kind == "estimate":
            return _decimal_text(round_to_leading_place(_value(self.left)), "the estimate")
        if self.kind == "compare":
            return _relation(_side_value(self.left, self), _side_value(self.right, self))
        value = _solve_fill(self)
        return None if value is None else _decimal_text(value, "the missing number")

    def accepts(self, number: Fraction) -> bool:
        """Whether `number` answers a result, estimate or fill problem rightly."""
        if self.kind == "result":
            return number == _value(self.left)
        if self.kind == "estimate":
            return number in acceptable_estimates(self.left)
        if self.kind == "fill":
            return _fill_holds(self, number)
        raise ValueError("a compare problem is answered with >, < or =")


@dataclass(frozen=True)
class Grade:
    decision: str               # right, wrong, unanswered or unreadable
    kind: str | None = None     # result, estimate, fill or compare; None when unreadable printed
    expected: str | None = None  # the right answer, when known
    reason: str | None = None   # why unreadable, in words


def tokens(printed: str) -> list[tuple[str, object]]:
    """[(kind, value)]: ("number", "12"), ("op", "×"), ("open", "("), ("close", ")"),
    ("equals", "="), ("approx", "≈"), ("circle", "○"), ("blank", "( )"), ("unit", "米")."""
    found, position, text = [], 0, printed.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise NotAProblem(f"unexpected {text[position:].strip()[:1]!r} in {printed!r}")
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "op":
            value = _OPERATORS[value]
        found.append((kind, value))
        position = match.end()
    return found


def parse(printed: str) -> Problem:
    """The problem a printed text asks; NotAProblem says why it is none."""
    if not printed or not printed.strip():
        raise NotAProblem("nothing printed")
    found = tokens(printed)
    kinds = [kind for kind, _ in found]
    first_operator = next((value for kind, value in found if kind == "op"), None)
    signs = [k for k in kinds if k in ("circle", "equals", "approx")]
    if "circle" in kinds:
        if len(signs) > 1 or BLANK in kinds:
            raise NotAProblem(f"{printed!r}: a compare problem is 'left ○ right', no '=' or blank")
        at = kinds.index("circle")
        left = _side(found[:at], printed)
        right = _side(found[at + 1:], printed)
        problem = Problem("compare", left, right, first_operator)
        if (left[0] == "quantity") != (right[0] == "quantity"):
            raise NotAProblem(f"{printed!r}: a quantity with units is compared with another "
                              f"quantity")
        if left[0] == "quantity":
            _quantity_kind(problem)   # units of one kind
        return problem
    if len(signs) != 1:
        raise NotAProblem(f"{printed!r}: neither 'expression =', 'expression ≈' nor 'left ○ right'")
    at = kinds.index(signs[0])
    before, after = found[:at], found[at + 1:]
    if not after or (len(after) == 1 and after[0][0] == BLANK):
        left = _side(before, printed)
        if _blanks(left):
            raise NotAProblem(f"{printed!r}: a blank on the left and nothing after "
                              f"'{found[at][1]}'")
        if left[0] == "quantity":
            raise NotAProblem(f"{printed!r}: units belong in compare problems and conversions")
        if first_operator is None:
            raise NotAProblem(f"{printed!r}: no operator before '{found[at][1]}'")
        return Problem("estimate" if signs[0] == "approx" else "result", left, None, first_operator)
    if signs[0] == "approx":
        raise NotAProblem(f"{printed!r}: an estimate is 'expression ≈' with the answer after it")
    left, right = _side(before, printed), _side(after, printed)
    blanks = _blanks(left) + _blanks(right)
    if blanks != 1:
        raise NotAProblem(f"{printed!r}: 'expression = expression' with " +
                          ("nothing left to fill in" if not blanks else "two blanks"))
    problem = Problem("fill", left, right, first_operator)
    if (left[0] == "quantity") != (right[0] == "quantity"):
        raise NotAProblem(f"{printed!r}: a conversion has units on both sides of '='")
    if left[0] == "quantity":
        _quantity_kind(problem)
    elif first_operator is None:
        raise NotAProblem(f"{printed!r}: no operator on either side of '='")
    return problem


def grade(printed: str, answer: str) -> Grade:
    """Right, wrong, unanswered or unreadable: `answer` (as written) to the printed problem."""
    try:
        problem = parse(printed)
        expected = problem.expected()
    except (NotAProblem, ArithmeticError) as e:
        return Grade(UNREADABLE, reason=f"printed part: {e}")
    answer = (answer or "").strip()
    if not answer:
        return Grade(UNANSWERED, problem.kind, expected)
    if problem.kind == "compare":
        if answer not in RELATIONS:
            return Grade(UNREADABLE, problem.kind, expected,
                         reason=f"the answer {answer!r} is not >, < or =")
        return Grade(RIGHT if answer == expected else WRONG, problem.kind, expected)
    remainder = _REMAINDER_ANSWER.fullmatch(answer)
    if remainder is not None:
        if problem.kind != "result":
            return Grade(WRONG, problem.kind, expected)
        division = _whole_division(problem.left)
        quotient, rest = int(remainder.group(1)), int(remainder.group(2))
        right = (division is not None and 0 <= rest < division[1]
                 and quotient * division[1] + rest == division[0])
        return Grade(RIGHT if right else WRONG, problem.kind, expected)
    number = number_of(answer)
    if number is None:
        return Grade(UNREADABLE, problem.kind, expected, reason=f"the answer {answer!r} is not a number")
    try:
        right = problem.accepts(number)
    except ArithmeticError:
        right = False
    return Grade(RIGHT if right else WRONG, problem.kind, expected)


def number_of(text: str) -> Fraction | None:
    """The exact value of a written number (`12`, `-3`, `0.35`, `019`), None if it is none."""
    if not re.fullmatch(r"[-−]?\d+(?:\.\d+)?", text):
        return None
    return Fraction(text.replace("−", "-"))


# --------------------------------------------------------------------------
# estimates


def round_half_up(value: Fraction, place: Fraction) -> Fraction:
    """`value` rounded to a multiple of `place`, halves away from zero."""
    sign = -1 if value < 0 else 1
    return sign * (abs(value) / place + Fraction(1, 2)).__floor__() * place


def leading_place(value: Fraction) -> Fraction:
    """The place of the first digit of `value` (89.4 -> 10, 0.07 -> 0.01); 1 for 0."""
    value = abs(value)
    if value == 0:
        return Fraction(1)
    place = Fraction(1)
    while value >= place * 10:
        place *= 10
    while value < place:
        place /= 10
    return place


def round_to_leading_place(value: Fraction) -> Fraction:
    return round_half_up(value, leading_place(value))


def acceptable_estimates(expression: tuple) -> set[Fraction]:
    """The estimates of the module docstring's rule: the value rounded to its
    leading place or to tens; the expression with every operand of 10 or more
    rounded to tens."""
    value = _value(expression)
    accepted = {round_to_leading_place(value)}
    if abs(value) >= 10:
        accepted.add(round_half_up(value, Fraction(10)))
    try:
        accepted.add(_value(_map_numbers(
            expression, lambda v: v if abs(v) < 10 else round_half_up(v, Fraction(10)))))
    except ArithmeticError:   # an operand rounded to 0 under a division
        pass
    return accepted


# --------------------------------------------------------------------------
# parsing


def _blanks(node) -> int:
    if node[0] == BLANK:
        return 1
    if node[0] == "number":
        return 0
    if node[0] == "quantity":
        return sum(_blanks(n) for n, _ in node[1])
    return _blanks(node[1]) + _blanks(node[2])


def _side(found, printed) -> tuple:
    """An expression, or a quantity (numbers with units), from its tokens."""
    if not found:
        raise NotAProblem(f"{printed!r}: an expression is missing (each side of ○, =, ≈ is one)")
    if any(kind == "unit" for kind, _ in found):
        return _quantity(found, printed)
    node, at = _expression(found, 0, printed)
    if at != len(found):
        raise NotAProblem(f"{printed!r}: unexpected {found[at][1]!r} after an expression")
    return node


def _quantity(found, printed) -> tuple:
    parts = []
    for at in range(0, len(found), 2):
        pair = found[at:at + 2]
        if len(pair) != 2 or pair[0][0] not in ("number", BLANK) or pair[1][0] != "unit":
            raise NotAProblem(f"{printed!r}: a side with units is numbers each with its unit "
                              f"(1米5厘米)")
        number = _leaf(pair[0])
        parts.append((number, pair[1][1]))
    return ("quantity", tuple(parts))


def _leaf(token) -> tuple:
    kind, value = token
    if kind == BLANK:
        return (BLANK,)
    return ("number", Fraction(value), value)


def _expression(found, at, printed):
    node, at = _term(found, at, printed)
    while at < len(found) and found[at][0] == "op" and found[at][1] in "+−":
        op = found[at][1]
        right, at = _term(found, at + 1, printed)
        node = (op, node, right)
    return node, at


def _term(found, at, printed):
    node, at = _factor(found, at, printed)
    while at < len(found) and found[at][0] == "op" and found[at][1] in "×÷":
        op = found[at][1]
        right, at = _factor(found, at + 1, printed)
        node = (op, node, right)
    return node, at


def _factor(found, at, printed):
    if at >= len(found):
        raise NotAProblem(f"{printed!r}: an operator without a number after it")
    kind, value = found[at]
    if kind in ("number", BLANK):
        return _leaf(found[at]), at + 1
    if kind == "open":
        node, at = _expression(found, at + 1, printed)
        if at >= len(found) or found[at][0] != "close":
            raise NotAProblem(f"{printed!r}: a '(' is not closed")
        return node, at + 1
    raise NotAProblem(f"{printed!r}: {value!r} where a number belongs")


# --------------------------------------------------------------------------
# values


def _value(node) -> Fraction:
    kind = node[0]
    if kind == "number":
        return node[1]
    if kind == BLANK:
        raise NotAProblem("a blank has no value")
    if kind == "quantity":
        raise NotAProblem("a quantity is compared, not computed")
    a, b = _value(node[1]), _value(node[2])
    return _apply(kind, a, b)


def _apply(op: str, a: Fraction, b: Fraction) -> Fraction:
    if op == "+":
        return a + b
    if op == "−":
        return a - b
    if op == "×":
        return a * b
    if b == 0:
        raise ZeroDivisionError("division by zero")
    return a / b


def _map_numbers(node, change):
    if node[0] == "number":
        return ("number", change(node[1]), None)
    if node[0] in (BLANK, "quantity"):
        return node
    return (node[0], _map_numbers(node[1], change), _map_numbers(node[2], change))


def _whole_division(node) -> tuple[int, int] | None:
    """(dividend, divisor) when the expression is one division of whole numbers."""
    if (node[0] == "÷" and node[1][0] == "number" and node[2][0] == "number"
            and node[1][1].denominator == 1 and node[2][1].denominator == 1 and node[2][1] > 0
            and node[1][1] >= 0):
        return int(node[1][1]), int(node[2][1])
    return None


def _decimal_text(value: Fraction, what: str) -> str:
    """`value` as a pupil writes it: `19`, `0.8`, `-3`; ArithmeticError when it has no
    finite decimal."""
    if value.denominator == 1:
        return str(value.numerator)
    denominator, places = value.denominator, 0
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    if denominator != 1:
        raise ArithmeticError(f"{what} {value} has no finite decimal")
    while (value * 10 ** places).denominator != 1:
        places += 1
    magnitude = abs(value)
    digits = str(magnitude.numerator * 10 ** places // magnitude.denominator).rjust(places + 1, "0")
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


def _relation(left: Fraction, right: Fraction) -> str:
    return ">" if left > right else "<" if left < right else "="


def _quantity_kind(problem: Problem) -> str | None:
    """The one kind of unit of a problem's quantities; NotAProblem for a mix."""
    names = [unit for side in (problem.left, problem.right) if side is not None and side[0] == "quantity"
             for _, unit in side[1]]
    kinds = {UNITS[name][0] for name in names if name in UNITS}
    if len(kinds) > 1:
        raise NotAProblem(f"units of {' and '.join(sorted(kinds))} cannot be compared")
    if kinds:
        kind = kinds.pop()
        if any(name in _AMBIGUOUS_UNIT and kind not in _AMBIGUOUS_UNIT[name] for name in names):
            raise NotAProblem(f"分 is no unit of {kind}")
        return kind
    return None   # only 分: money or time alike


def _unit_factor(name: str, kind: str | None) -> int:
    if name in UNITS:
        return UNITS[name][1]
    return _AMBIGUOUS_UNIT[name].get(kind, 1) if kind else 1


def _side_value(side, problem: Problem) -> Fraction:
    if side[0] != "quantity":
        return _value(side)
    kind = _quantity_kind(problem)
    return sum((number[1] * _unit_factor(unit, kind) for number, unit in side[1]), Fraction(0))


def _fill_holds(problem: Problem, number: Fraction) -> bool:
    filled = Problem("compare", _filled(problem.left, number), _filled(problem.right, number))
    try:
        return _side_value(filled.left, problem) == _side_value(filled.right, problem)
    except ZeroDivisionError:
        return False


def _filled(node, number: Fraction):
    if node[0] == BLANK:
        return ("number", number, None)
    if node[0] == "number":
        return node
    if node[0] == "quantity":
        return ("quantity", tuple((_filled(n, number), unit) for n, unit in node[1]))
    return (node[0], _filled(node[1], number), _filled(node[2], number))


def _solve_fill(problem: Problem) -> Fraction | None:
    """The number the blank takes; None when any number does."""
    if problem.left[0] == "quantity":   # a conversion: the blank's number times its unit
        kind = _quantity_kind(problem)
        sides = []
        for side in (problem.left, problem.right):
            known, factor = Fraction(0), Fraction(0)
            for number, unit in side[1]:
                if number[0] == BLANK:
                    factor = Fraction(_unit_factor(unit, kind))
                else:
                    known += number[1] * _unit_factor(unit, kind)
            sides.append((known, factor))
        (known_a, factor_a), (known_b, factor_b) = sides
        return (known_b - known_a) / (factor_a - factor_b)
    if _blanks(problem.left):
        with_blank, target = problem.left, _value(problem.right)
    else:
        with_blank, target = problem.right, _value(problem.left)
    return _invert(with_blank, target)


def _invert(node, target: Fraction) -> Fraction | None:
    """The blank's value that makes `node` equal `target`, walking down from the
    root to the blank (the other child of each operator is a number)."""
    while node[0] != BLANK:
        op, left, right = node
        blank_left = bool(_blanks(left))
        known = _value(right if blank_left else left)
        if op == "+":
            target = target - known
        elif op == "−":
            target = target + known if blank_left else known - target
        elif op == "×":
            if known == 0:
                if target != 0:
                    raise ArithmeticError(f"no number times 0 makes {target}")
                return None
            target = target / known
        elif blank_left:        # ( ) ÷ b = c
            if known == 0:
                raise ArithmeticError("division by zero")
            target = target * known
        else:                   # a ÷ ( ) = c
            if target == 0:
                if known != 0:
                    raise ArithmeticError(f"{known} ÷ ( ) is never 0")
                return None
            target = known / target
        node = left if blank_left else right
    return target
