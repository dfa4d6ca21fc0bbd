"""The Japanese business-day calendar of R12: weekends, national holidays (from the
maintained `holidays` package) and a year-end closure (12/29–1/3 unless configured)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays

JST = ZoneInfo("Asia/Tokyo")


@dataclass(frozen=True)
class YearEndClosure:
    """Closed from (start_month, start_day) through (end_month, end_day), wrapping the year."""

    start: tuple[int, int] = (12, 29)
    end: tuple[int, int] = (1, 3)

    @classmethod
    def parse(cls, text: str) -> YearEndClosure | None:
        """`"12-29/01-03"`; `none` (or an empty string) means no closure."""
        if not text.strip() or text.strip().lower() == "none":
            return None
        try:
            first, last = text.split("/")
            start = tuple(int(part) for part in first.split("-"))
            end = tuple(int(part) for part in last.split("-"))
            date(2000, *start), date(2000, *end)  # validates month and day
        except (ValueError, TypeError):
            raise ValueError(f"year-end closure must look like 12-29/01-03, got {text!r}") from None
        return cls(start=start, end=end)  # type: ignore[arg-type]

    def __contains__(self, day: date) -> bool:
        md = (day.month, day.day)
        if self.start <= self.end:
            return self.start <= md <= self.end
        return md >= self.start or md <= self.end


class BusinessCalendar:
    def __init__(self, closure: YearEndClosure | None = YearEndClosure()):
        self.closure = closure
        self._holidays = holidays.country_holidays("JP")

    def is_business_day(self, day: date) -> bool:
        if day.weekday() >= 5 or day in self._holidays:
            return False
        return self.closure is None or day not in self.closure

    def add_business_days(self, start: datetime, days: int) -> datetime:
        """The same time of day (JST) `days` business days after `start`'s date."""
        local = start.astimezone(JST)
        day = local.date()
        remaining = days
        while remaining:
            day += timedelta(days=1)
            if self.is_business_day(day):
                remaining -= 1
        return datetime.combine(day, local.timetz()).astimezone(start.tzinfo)
