"""How prices read: a range only when its ends differ as printed."""

from __future__ import annotations

from trainstack.plan.render import money_range


def test_a_range_whose_ends_print_the_same_is_one_price():
    assert money_range(7.816, 7.824) == "$7.82"  # not "$7.82-7.82"
    assert money_range(3.06, 3.06) == "$3.06"
    assert money_range(1.0, 12.24) == "$1.00-12.24"
    assert money_range(1234.5, 2345.25) == "$1,234.50-2,345.25"
