"""reader/arithmetic.py on everything real workbooks hold (issue 24): decimals,
remainders, estimates, several operators with precedence and brackets, fill
blanks anywhere, units in compare problems and conversions; each rule exact."""

from __future__ import annotations

from fractions import Fraction

import pytest

from reader.arithmetic import (
    RIGHT,
    UNANSWERED,
    UNREADABLE,
    WRONG,
    NotAProblem,
    acceptable_estimates,
    grade,
    leading_place,
    number_of,
    parse,
    round_half_up,
)


@pytest.mark.parametrize("printed, answer, decision, expected", [
    # decimals, exactly (0.1 + 0.2 is 0.3 here)
    ("0.35+0.45=", "0.8", RIGHT, "0.8"),
    ("0.35+0.45=", "0.80", RIGHT, "0.8"),       # the same number
    ("0.1+0.2=", "0.3", RIGHT, "0.3"),
    ("28.56−14.76=", "13.8", RIGHT, "13.8"),
    ("0.63+2.8=", "3.43", RIGHT, "3.43"),
    ("1.25×0.8=", "1", RIGHT, "1"),
    ("0.25×0.4=", "0.01", WRONG, "0.1"),
    ("0.7÷10=", "0.07", RIGHT, "0.07"),
    ("27.7−13.8=", "139", WRONG, "13.9"),
    # remainders
    ("17÷5=", "3……2", RIGHT, "3……2"),
    ("17÷5=", "3...2", RIGHT, "3……2"),         # ASCII dots
    ("17÷5=", "3……1", WRONG, "3……2"),
    ("17÷5=", "2……7", WRONG, "3……2"),         # a remainder not smaller than the divisor
    ("17÷5=", "3.4", RIGHT, "3……2"),          # the exact quotient is right too
    ("433÷11=", "39……4", RIGHT, "39……4"),
    ("15÷5=", "3……0", RIGHT, "3"),
    ("12+7=", "19……0", WRONG, "19"),          # a remainder answers a division
    # precedence and brackets
    ("18÷3+9=", "15", RIGHT, "15"),
    ("31+8÷2=", "35", RIGHT, "35"),
    ("31+8÷2=", "19.5", WRONG, "35"),
    ("10+10×10=", "110", RIGHT, "110"),
    ("9×3+71=", "98", RIGHT, "98"),
    ("45+19−12=", "52", RIGHT, "52"),
    ("25+5−7=", "23", RIGHT, "23"),
    ("20−5−3=", "12", RIGHT, "12"),            # left to right
    ("24÷4÷2=", "3", RIGHT, "3"),
    ("7+(10+5)=", "22", RIGHT, "22"),
    ("5×(6÷3)=", "10", RIGHT, "10"),
    ("(20−5)×2=", "30", RIGHT, "30"),
    # fill blanks anywhere, either side of "="
    ("7÷( )=7", "1", RIGHT, "1"),
    ("7+( )×2=15", "4", RIGHT, "4"),
    ("( )×3+1=10", "3", RIGHT, "3"),
    ("15=( )+7", "8", RIGHT, "8"),
    ("( )−2.5=1.5", "4", RIGHT, "4"),
    ("100−( )=37+3", "60", RIGHT, "60"),
    ("0×( )=0", "5", RIGHT, None),
    # estimates
    ("447÷5≈", "90", RIGHT, "90"),            # 89.4: leading place; 450÷5
    ("319÷4≈", "80", RIGHT, "80"),            # the real crops' pupil: 79.75; 320÷4
    ("52×9≈", "500", RIGHT, "500"),           # 468 to its leading place
    ("52×9≈", "470", RIGHT, "500"),           # 468 to tens
    ("52×9≈", "450", RIGHT, "500"),           # 50×9
    ("52×9≈", "468", WRONG, "500"),           # the exact value is no estimate
    ("52×9≈", "400", WRONG, "500"),
    ("389÷5≈", "80", RIGHT, "80"),
    ("498+207≈", "700", RIGHT, "700"),
    ("447÷5≈", "", UNANSWERED, "90"),
    # compare, expressions and units
    ("53−6○49", "<", RIGHT, "<"),
    ("3分米○3厘米", ">", RIGHT, ">"),
    ("1米5厘米○1米", ">", RIGHT, ">"),
    ("1米○100厘米", "=", RIGHT, "="),
    ("2千米○1999米", "<", WRONG, ">"),
    ("35毫米○3厘米", ">", RIGHT, ">"),
    ("1元2角○12角", "=", RIGHT, "="),
    ("5角○50分", "=", RIGHT, "="),            # 分 of money beside 角
    ("0.5元○5角", "=", RIGHT, "="),
    ("2时○100分", ">", RIGHT, ">"),           # 分 of time beside 时
    ("3分○200秒", "<", RIGHT, "<"),
    ("1小时○60分", "=", RIGHT, "="),
    ("1千克○900克", ">", RIGHT, ">"),
    ("3吨○3000千克", "=", RIGHT, "="),
    ("2公斤○2千克", "=", RIGHT, "="),
    ("3分○30分", "<", RIGHT, "<"),            # only 分: the kind does not matter
    # conversions
    ("3米=( )厘米", "300", RIGHT, "300"),
    ("1元=( )角", "10", RIGHT, "10"),
    ("2时=( )分", "120", RIGHT, "120"),
    ("1米5厘米=( )厘米", "105", RIGHT, "105"),
    ("4000克=( )千克", "4", RIGHT, "4"),
])
def test_every_form_is_graded_exactly(printed, answer, decision, expected):
    verdict = grade(printed, answer)
    assert (verdict.decision, verdict.expected) == (decision, expected), verdict
    assert verdict.reason is None


@pytest.mark.parametrize("printed, reason", [
    ("3米○3元", "length and money"),
    ("3米○3", "compared with another quantity"),
    ("2时○3角", "money and time"),
    ("3米+2=", "numbers each with its unit"),
    ("3米=( )", "units belong in compare"),
    ("3米=( )+2", "units on both sides"),
    ("447÷5≈80", "an estimate is"),
    ("(3+4=", "not closed"),
    ("3+4)=", "unexpected ')'"),
    ("3++4=", "where a number belongs"),
    ("3+4=5=6", "neither"),
    ("( )+( )=3", "two blanks"),
    ("2÷3×2=", "no finite decimal"),
    ("2÷( )=0", "never 0"),
])
def test_what_is_no_problem_says_why(printed, reason):
    verdict = grade(printed, "1")
    assert verdict.decision == UNREADABLE
    assert reason in verdict.reason


def test_categories_compare_first_then_fill_then_the_first_operator():
    assert parse("18÷3+9=").category == "div"
    assert parse("7+(10+5)=").category == "add"
    assert parse("(20−5)×2=").category == "sub"          # the first operator as printed
    assert parse("10+10×10=").category == "add"
    assert parse("447÷5≈").category == "div"
    assert parse("0.7÷10=").category == "div"
    assert parse("7+( )×2=15").category == "fill"
    assert parse("53−6○49").category == "compare"
    assert parse("3分米○3厘米").category == "compare"
    assert parse("3米=( )厘米").category == "fill"
    with pytest.raises(NotAProblem):
        parse("583−30")


def test_the_rounding_rules_are_exact():
    assert round_half_up(Fraction("89.4"), Fraction(10)) == 90
    assert round_half_up(Fraction(85), Fraction(10)) == 90      # a half goes up
    assert round_half_up(Fraction(-85), Fraction(10)) == -90
    assert leading_place(Fraction("89.4")) == 10
    assert leading_place(Fraction("0.07")) == Fraction(1, 100)
    assert leading_place(Fraction(1000)) == 1000
    assert acceptable_estimates(parse("52×9≈").left) == {500, 470, 450}
    assert acceptable_estimates(parse("7×8≈").left) == {60, 56}


def test_numbers_are_read_from_their_digits():
    assert number_of("0.1") == Fraction(1, 10)
    assert number_of("019") == 19
    assert number_of("-3") == -3
    assert number_of("1.") is None and number_of("1,5") is None and number_of("") is None
