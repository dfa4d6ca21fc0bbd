"""R12: the Japanese business-day calendar behind `new`'s 5-business-day expectation:
weekends, national holidays, and a year-end closure (12/29–1/3 unless configured)."""
from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.status.domain.calendar import JST, BusinessCalendar, YearEndClosure

DEFAULT = BusinessCalendar()
NO_CLOSURE = BusinessCalendar(YearEndClosure.parse(""))


def jst(y, m, d, hh=10, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=JST)


@pytest.mark.parametrize(
    ("day", "business"),
    [
        pytest.param(date(2026, 6, 3), True, id="plain-wednesday"),
        pytest.param(date(2026, 6, 6), False, id="saturday"),
        pytest.param(date(2026, 6, 7), False, id="sunday"),
        pytest.param(date(2026, 4, 29), False, id="showa-day"),
        pytest.param(date(2026, 5, 6), False, id="golden-week-substitute-holiday"),
        pytest.param(date(2026, 9, 22), False, id="silver-week-sandwiched-national-holiday"),
        pytest.param(date(2026, 12, 28), True, id="last-day-before-closure"),
        pytest.param(date(2026, 12, 29), False, id="closure-first-day"),
        pytest.param(date(2026, 12, 31), False, id="closure-new-years-eve"),
        pytest.param(date(2027, 1, 1), False, id="new-years-day"),
        pytest.param(date(2025, 1, 3), False, id="closure-last-day-a-friday"),
        pytest.param(date(2027, 1, 4), True, id="first-day-after-closure"),
    ],
)
def test_is_business_day(day, business):
    assert DEFAULT.is_business_day(day) is business


@pytest.mark.parametrize(
    "day",
    [pytest.param(date(2026, 12, 29), id="12-29"), pytest.param(date(2026, 12, 30), id="12-30"),
     pytest.param(date(2026, 12, 31), id="12-31")],
)
def test_without_closure_year_end_weekdays_are_business_days(day):
    assert NO_CLOSURE.is_business_day(day)
    assert not DEFAULT.is_business_day(day)


@pytest.mark.parametrize(
    ("calendar", "submitted", "expected"),
    [
        pytest.param(DEFAULT, jst(2026, 6, 1), jst(2026, 6, 8), id="monday-to-next-monday"),
        pytest.param(DEFAULT, jst(2026, 6, 5), jst(2026, 6, 12), id="friday-skips-weekend"),
        pytest.param(DEFAULT, jst(2026, 6, 6), jst(2026, 6, 12), id="saturday-counts-from-monday"),
        pytest.param(DEFAULT, jst(2026, 6, 7), jst(2026, 6, 12), id="sunday-counts-from-monday"),
        pytest.param(DEFAULT, jst(2026, 4, 28), jst(2026, 5, 11), id="golden-week-2026"),
        pytest.param(DEFAULT, jst(2026, 9, 18), jst(2026, 9, 30), id="silver-week-2026"),
        pytest.param(DEFAULT, jst(2026, 12, 25), jst(2027, 1, 7), id="default-year-end-closure"),
        pytest.param(DEFAULT, jst(2026, 12, 30), jst(2027, 1, 8), id="submitted-during-closure"),
        pytest.param(NO_CLOSURE, jst(2026, 12, 25), jst(2027, 1, 4), id="no-closure-only-new-years-day"),
        pytest.param(BusinessCalendar(YearEndClosure.parse("12-25/01-05")), jst(2026, 12, 23), jst(2027, 1, 12),
                     id="configured-closure-12-25-to-01-05-then-coming-of-age-day"),
        pytest.param(BusinessCalendar(YearEndClosure.parse("08-13/08-16")), jst(2026, 8, 12), jst(2026, 8, 21),
                     id="configured-non-wrapping-closure-obon"),
        pytest.param(DEFAULT, jst(2026, 8, 12), jst(2026, 8, 19), id="default-closure-ignores-obon"),
        pytest.param(DEFAULT, jst(2026, 6, 1, 23, 59), jst(2026, 6, 8, 23, 59), id="keeps-time-of-day"),
    ],
)
def test_five_business_days(calendar, submitted, expected):
    assert calendar.add_business_days(submitted, 5) == expected


@pytest.mark.parametrize(
    ("submitted_utc", "expected_utc"),
    [
        # 15:30 UTC Friday = 00:30 JST Saturday: counting starts from the JST date.
        pytest.param(datetime(2026, 6, 5, 15, 30, tzinfo=UTC),
                     datetime(2026, 6, 11, 15, 30, tzinfo=UTC), id="utc-friday-is-jst-saturday"),
        pytest.param(datetime(2026, 6, 5, 14, 0, tzinfo=UTC),
                     datetime(2026, 6, 12, 14, 0, tzinfo=UTC), id="utc-friday-is-jst-friday"),
    ],
)
def test_business_days_are_counted_on_the_japanese_date(submitted_utc, expected_utc):
    result = DEFAULT.add_business_days(submitted_utc, 5)
    assert result == expected_utc
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "closure"),
    [
        pytest.param("12-29/01-03", YearEndClosure(), id="default-spelled-out"),
        pytest.param("12-25/01-05", YearEndClosure((12, 25), (1, 5)), id="wider"),
        pytest.param("08-13/08-16", YearEndClosure((8, 13), (8, 16)), id="non-wrapping"),
        pytest.param("", None, id="empty-means-no-closure"),
        pytest.param("   ", None, id="blank-means-no-closure"),
        pytest.param("none", None, id="none-means-no-closure"),
    ],
)
def test_year_end_closure_parse(text, closure):
    assert YearEndClosure.parse(text) == closure


@pytest.mark.parametrize(
    "text",
    ["13-01/01-03", "12-32/01-03", "02-30/03-01", "12-29", "12-29/01", "dec-29/jan-03", "12-29/01-03/02-01"],
)
def test_year_end_closure_parse_refuses_ill_formed_text(text):
    with pytest.raises(ValueError, match="12-29/01-03"):
        YearEndClosure.parse(text)


@pytest.mark.parametrize(
    ("closure", "day", "inside"),
    [
        pytest.param(YearEndClosure(), date(2026, 12, 28), False, id="default-before"),
        pytest.param(YearEndClosure(), date(2026, 12, 29), True, id="default-first"),
        pytest.param(YearEndClosure(), date(2027, 1, 1), True, id="default-across-new-year"),
        pytest.param(YearEndClosure(), date(2027, 1, 3), True, id="default-last"),
        pytest.param(YearEndClosure(), date(2027, 1, 4), False, id="default-after"),
        pytest.param(YearEndClosure((8, 13), (8, 16)), date(2026, 8, 12), False, id="obon-before"),
        pytest.param(YearEndClosure((8, 13), (8, 16)), date(2026, 8, 16), True, id="obon-last"),
        pytest.param(YearEndClosure((8, 13), (8, 16)), date(2026, 12, 30), False, id="obon-not-year-end"),
    ],
)
def test_closure_contains(closure, day, inside):
    assert (day in closure) is inside
