"""Periods of Asia/Shanghai dates, as the figures count them: [start, end), end exclusive."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from fieldapp.models import Warning

LOCAL = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Period:
    """Local dates [start, end): end is the first day NOT included."""

    start: date
    end: date

    @property
    def last_day(self) -> date:
        """The last date included: what people write as the end of a period."""
        return self.end - timedelta(days=1)

    def bounds(self) -> tuple[datetime, datetime]:
        """The period as aware UTC datetimes."""
        return local_midnight(self.start), local_midnight(self.end)

    def last_year(self) -> "Period":
        """The same dates one year earlier (29 February becomes the 28th)."""
        return Period(_year_back(self.start), _year_back(self.end))

    @property
    def days(self) -> int:
        return (self.end - self.start).days


def local_midnight(day: date) -> datetime:
    """00:00 in Asia/Shanghai on `day`, as UTC."""
    return datetime.combine(day, time(0), tzinfo=LOCAL).astimezone(UTC)


def _year_back(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def local_today(now: datetime) -> date:
    return now.astimezone(LOCAL).date()


def preset(name: str, now: datetime) -> Period:
    """today, week (Monday to today), month (1st to today), each ending after today."""
    today = local_today(now)
    tomorrow = today + timedelta(days=1)
    if name == "week":
        return Period(today - timedelta(days=today.weekday()), tomorrow)
    if name == "month":
        return Period(today.replace(day=1), tomorrow)
    return Period(today, tomorrow)


def received_in(period: Period, station_id: int | None) -> list:
    """SQL conditions: warnings received in `period` (at `station_id`, or anywhere for None)."""
    start, end = period.bounds()
    clauses = [Warning.received_at >= start, Warning.received_at < end]
    if station_id is not None:
        clauses.append(Warning.station_id == station_id)
    return clauses
