"""The arithmetic of a 口算 problem, exactly: what its printed text asks and
whether a handwritten answer is right.

    grade("12+7=", "19")        -> Grade("right", expected="19", kind="result")
    grade("( )+5=7", "3")       -> Grade("wrong", expected="2", kind="fill")
    grade("7×8○54", ">")        -> Grade("right", expected=">", kind="compare")
    grade("12+7=", "")          -> Grade("unanswered", expected="19", ...)
    grade("12+7=", "1>")        -> Grade("unreadable", reason="the answer '1>' is not a number")

The printed text is the `printed` field of ks_<split>_text.jsonl
(docs/ks-format.md): numbers, `+ − × ÷`, `=`, `○` (the compare circle) and
the answer blank, `( )` or `_` (or nothing after a final `=`). Three forms:
- result: `a op b =` (optionally a blank after the `=`): the answer is a op b;
- fill: `a op b = c` with one of a, b a blank: the answer is the missing
  number, graded by putting it in the blank (so `0×( )=0` takes any number);
- compare: `L ○ R`, each side a number or `a op b`: the answer is `>`, `<` or `=`.

Everything is integer or exact rational arithmetic (fractions.Fraction); a
division must come out whole where a result is asked. ASCII stand-ins are
accepted for hand-typed text: `-` for `−`, `*` and `x` for `×`, `/` and `:`
for `÷`.

A decision is one of right, wrong, unanswered (nothing written) and
unreadable (the printed text is not one of the three forms, or the answer is
not of the form the problem asks for); `reason` says why in words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

RIGHT, WRONG, UNANSWERED, UNREADABLE = "right", "wrong", "unanswered", "unreadable"
DECISIONS = (RIGHT, WRONG, UNANSWERED, UNREADABLE)
RELATIONS = (">", "<", "=")

_OPERATORS = {"+": "+", "−": "−", "-": "−", "×": "×", "*": "×", "x": "×", "X": "×",
              "÷": "÷", "/": "÷", ":": "÷"}
_TOKEN = re.compile(r"\s*(?:(?P<number>\d+)|(?P<blank>\(\s*\)|_+)|(?P<op>[+\-−×*xX÷/:])"
                    r"|(?P<equals>=)|(?P<circle>[○◯]))")
BLANK = "blank"


class NotAProblem(ValueError):
    """Printed text that is not one of the three forms; the message says why."""


@dataclass(frozen=True)
class Problem:
    """A parsed printed problem.

    kind "result": operands (a, op, b). kind "fill": operands (a, op, b) with
    one of a, b the string BLANK, and `equals` c. kind "compare": `left` and
    `right`, each (n,) or (a, op, b).
    """
    kind: str
    operands: tuple = ()
    equals: int | None = None
    left: tuple = ()
    right: tuple = ()

    def expected(self) -> str | None:
        """The right answer as the pupil would write it; None when no single
        whole number is right (a fill blank that any number fills, `0×( )=0`)."""
        if self.kind == "result":
            return str(_whole(_value(self.operands), "the result"))
        if self.kind == "compare":
            return _relation(_value(self.left), _value(self.right))
        return _solve_fill(self.operands, self.equals)


@dataclass(frozen=True)
class Grade:
    decision: str               # right, wrong, unanswered or unreadable
    kind: str | None = None     # result, fill or compare; None when the printed text is unreadable
    expected: str | None = None  # the right answer, when known
    reason: str | None = None   # why unreadable, in words


def tokens(printed: str) -> list[tuple[str, object]]:
    """[(kind, value)]: ("number", 12), ("op", "×"), ("equals", "="), ("circle", "○"), ("blank", "( )")."""
    found, position, text = [], 0, printed.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise NotAProblem(f"unexpected {text[position:].strip()[:1]!r} in {printed!r}")
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "number":
            value = int(value)
        elif kind == "op":
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
    if "circle" in kinds:
        if kinds.count("circle") > 1 or "equals" in kinds or BLANK in kinds:
            raise NotAProblem(f"{printed!r}: a compare problem is 'left ○ right' with numbers "
                              f"or 'a op b' on each side")
        at = kinds.index("circle")
        return Problem("compare", left=_expression(found[:at], printed),
                       right=_expression(found[at + 1:], printed))
    if kinds.count("equals") != 1:
        raise NotAProblem(f"{printed!r}: neither 'a op b =' nor 'left ○ right'")
    at = kinds.index("equals")
    left, right = found[:at], found[at + 1:]
    if len(left) != 3 or left[1][0] != "op" or any(k not in ("number", BLANK) for k, _ in left[::2]):
        raise NotAProblem(f"{printed!r}: the left of '=' is not 'a op b'")
    a, op, b = (v if k == "number" else BLANK for k, v in left)
    op = left[1][1]
    if not right or (len(right) == 1 and right[0][0] == BLANK):
        if BLANK in (a, b):
            raise NotAProblem(f"{printed!r}: a blank on the left and nothing after '='")
        return Problem("result", operands=(a, op, b))
    if len(right) != 1 or right[0][0] != "number":
        raise NotAProblem(f"{printed!r}: after '=' comes a number or the answer's blank")
    if (a, b).count(BLANK) != 1:
        raise NotAProblem(f"{printed!r}: 'a op b = c' with " +
                          ("nothing left to fill in" if BLANK not in (a, b) else "two blanks"))
    return Problem("fill", operands=(a, op, b), equals=right[0][1])


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
    if not re.fullmatch(r"-?\d+", answer):
        return Grade(UNREADABLE, problem.kind, expected, reason=f"the answer {answer!r} is not a number")
    number = int(answer)
    if problem.kind == "result":
        right = str(number) == expected
    else:
        a, op, b = (number if v == BLANK else v for v in problem.operands)
        try:
            right = _value((a, op, b)) == problem.equals
        except ZeroDivisionError:
            right = False
    return Grade(RIGHT if right else WRONG, problem.kind, expected)


def _expression(found, printed) -> tuple:
    if len(found) == 1 and found[0][0] == "number":
        return (found[0][1],)
    if (len(found) == 3 and found[0][0] == "number" and found[1][0] == "op"
            and found[2][0] == "number"):
        return (found[0][1], found[1][1], found[2][1])
    raise NotAProblem(f"{printed!r}: each side of ○ is a number or 'a op b'")


def _value(expression) -> Fraction:
    if len(expression) == 1:
        return Fraction(expression[0])
    a, op, b = expression
    a, b = Fraction(a), Fraction(b)
    if op == "+":
        return a + b
    if op == "−":
        return a - b
    if op == "×":
        return a * b
    if b == 0:
        raise ZeroDivisionError("division by zero")
    return a / b


def _whole(value: Fraction, what: str) -> int:
    if value.denominator != 1:
        raise ArithmeticError(f"{what} {value} is not a whole number")
    return value.numerator


def _relation(left: Fraction, right: Fraction) -> str:
    return ">" if left > right else "<" if left < right else "="


def _solve_fill(operands, c) -> str | None:
    a, op, b = operands
    c = Fraction(c)
    first = a == BLANK
    known = Fraction(b if first else a)
    if op == "+":
        value = c - known
    elif op == "−":
        value = c + known if first else known - c
    elif op == "×":
        if known == 0:
            if c != 0:
                raise ArithmeticError("no number times 0 makes " + str(c))
            return None
        value = c / known
    elif first:       # ( ) ÷ b = c
        if known == 0:
            raise ArithmeticError("division by zero")
        value = c * known
    else:             # a ÷ ( ) = c
        if c == 0:
            if known != 0:
                raise ArithmeticError(f"{known} ÷ ( ) is never 0")
            return None
        value = known / c
    return str(_whole(value, "the missing number"))
