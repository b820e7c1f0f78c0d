"""Timestamps as people export them, stored as one UTC ISO-8601 string per instant.

Every timestamp capmap stores is UTC and ends in ``Z``: the same instant written with different
offsets gives the same string. A timestamp without a zone takes a default zone (a setting,
``Asia/Shanghai`` unless configured); the zone assumed is returned with the instant so the
caller can record it on the event.

Accepted forms
--------------
- ISO-8601 and its everyday variants: ``2024-01-30T12:00:00+08:00``, ``2024-01-30 04:00Z``,
  ``2024-1-30 12:00``, ``2024/01/30 12:00:05.250``, ``2024-01-30`` (midnight), with ``Z``,
  ``UTC``, ``GMT`` or an offset ``+08:00`` / ``+0800`` / ``+08``;
- Chinese dates: ``2024年1月30日 12:00``;
- Excel serial dates (days since 1899-12-30, the time as the fraction): ``45321.5`` is
  2024-01-30 12:00 local time; serials 61 to 2958465 (1900-03-01 to 9999-12-31);
- Unix epoch seconds (10^8 ≤ x < 10^10) and milliseconds (10^11 ≤ x < 10^13, as WeCom and
  DingTalk exports write them), which are UTC;
- compact dates ``20240130`` and date-times ``20240130120000``.

Day/month/year orders such as ``01/30/2024`` are refused: ``03/04/2024`` cannot be read
safely. A naive time that a daylight-saving change makes ambiguous takes its first occurrence
(``fold=0``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from graph.errors import ConfigError

DEFAULT_TZ = "Asia/Shanghai"

_EXCEL_EPOCH = datetime(1899, 12, 30)
_EXCEL_MIN, _EXCEL_MAX = 61, 2958466  # 1900-03-01 (after Excel's phantom 1900-02-29) .. 10000-01-01
_EPOCH_S = (10**8, 10**10)
_EPOCH_MS = (10**11, 10**13)

_DATETIME = re.compile(
    r"^(?P<y>\d{4})(?:[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})|年(?P<zm>\d{1,2})月(?P<zd>\d{1,2})日?)"
    r"(?:[T\s]+(?P<H>\d{1,2})(?::|时|點|点)(?P<M>\d{2})分?(?:(?::|分)(?P<S>\d{2})(?:[.,](?P<f>\d{1,9}))?秒?)?)?"
    r"\s*(?P<z>Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?|(?:UTC|GMT)[+-]\d{1,2}(?::?\d{2})?)?$",
    re.IGNORECASE,
)
_COMPACT = re.compile(r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})(?:T(?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2}))?(?P<z>Z)?$")
_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?$")
_DMY = re.compile(r"^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")


@dataclass(frozen=True)
class Instant:
    """A parsed timestamp: ``utc`` as stored (``...Z``) and the zone assumed, if any."""

    utc: str
    tz_assumed: str | None = None


FUTURE_TOLERANCE = timedelta(days=1)
"""How far after the clock of the importing machine a behaviour may be dated (clocks and zones
set wrong by a few hours are common); anything later is refused."""


def not_in_future(dt: datetime, now: datetime | None = None) -> datetime:
    """``dt`` (aware) if it is no later than :data:`FUTURE_TOLERANCE` after ``now`` (the clock).

    A behaviour cannot have happened yet, and the newest evidence anchors every recency weight:
    one event dated 2204 would weigh all others to nothing.

    Raises
    ------
    ValueError
        Naming the instant and the latest one accepted.
    """
    latest = (now or datetime.now(UTC)) + FUTURE_TOLERANCE
    if dt > latest:
        raise ValueError(f"{format_utc(dt)} is in the future (later than {format_utc(latest)}): a behaviour "
                         "cannot have happened yet; check the date, the zone or the exporting system's clock")
    return dt


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (e.g. ``Asia/Shanghai``).

    Raises
    ------
    ConfigError
        When the name is unknown, or no zone database is installed (install the ``tzdata``
        package, which capmap depends on, or the OS package of that name).
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as e:  # OSError: "Asia" is a folder of zones
        raise ConfigError(
            f"time zone {name!r} is unknown: name an IANA zone such as 'Asia/Shanghai' or 'UTC' "
            f"(if every name fails, install the 'tzdata' package)"
        ) from e


def format_utc(dt: datetime) -> str:
    """``dt`` (aware) as UTC ISO-8601 with ``Z``; milliseconds or microseconds only when set.

    >>> format_utc(datetime(2024, 1, 30, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    '2024-01-30T04:00:00Z'
    >>> format_utc(datetime(2024, 1, 30, 4, 0, 0, 250000, tzinfo=UTC))
    '2024-01-30T04:00:00.250Z'
    """
    if dt.tzinfo is None:
        raise ValueError("a naive datetime has no instant; give it a zone first")
    u = dt.astimezone(UTC)
    base = u.strftime("%Y-%m-%dT%H:%M:%S")
    if u.microsecond == 0:
        return base + "Z"
    if u.microsecond % 1000 == 0:
        return f"{base}.{u.microsecond // 1000:03d}Z"
    return f"{base}.{u.microsecond:06d}Z"


def excel_serial_to_datetime(serial: float) -> datetime:
    """An Excel serial date (1900 date system) as a naive local datetime, to the millisecond.

    >>> excel_serial_to_datetime(45321.5)
    datetime.datetime(2024, 1, 30, 12, 0)

    Raises
    ------
    ValueError
        Outside 61 (1900-03-01) to 2958465 (9999-12-31): below 61 Excel counts a 29 February
        1900 that never was.
    """
    if not _EXCEL_MIN <= serial < _EXCEL_MAX:
        raise ValueError(f"Excel serial date {serial:g} is outside 61 (1900-03-01) .. 2958465 (9999-12-31)")
    return _EXCEL_EPOCH + timedelta(milliseconds=round(serial * 86_400_000))


def _offset(text: str) -> tzinfo:
    t = text.upper()
    if t in ("Z", "UTC", "GMT"):
        return UTC
    t = t.removeprefix("UTC").removeprefix("GMT")
    sign = -1 if t[0] == "-" else 1
    digits = t[1:].replace(":", "")
    hours, minutes = (int(digits), 0) if len(digits) <= 2 else (int(digits[:-2]), int(digits[-2:]))
    if hours > 14 or minutes > 59:
        raise ValueError(f"offset {text!r} is not a valid UTC offset")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _compact(x: float) -> datetime | None:
    """``20240130`` or ``20240130120000`` as a naive datetime, else None."""
    for lo, hi, fmt in ((19000101, 21001231, "%Y%m%d"), (19000101000000, 21001231235959, "%Y%m%d%H%M%S")):
        if x == int(x) and lo <= x <= hi:
            try:
                return datetime.strptime(str(int(x)), fmt)
            except ValueError:
                return None
    return None


def _from_number(x: float, tz: ZoneInfo) -> tuple[datetime, bool]:
    """(aware datetime, whether the zone was assumed) for a number."""
    if not math.isfinite(x):
        raise ValueError(f"{x!r} is not a timestamp")
    compact = _compact(x)
    if compact is not None:
        return compact.replace(tzinfo=tz), True
    if _EXCEL_MIN <= x < _EXCEL_MAX:
        return excel_serial_to_datetime(x).replace(tzinfo=tz), True
    if _EPOCH_S[0] <= x < _EPOCH_S[1]:
        return datetime.fromtimestamp(0, UTC) + timedelta(milliseconds=round(x * 1000)), False
    if _EPOCH_MS[0] <= x < _EPOCH_MS[1]:
        return datetime.fromtimestamp(0, UTC) + timedelta(milliseconds=round(x)), False
    raise ValueError(
        f"number {x:g} is neither an Excel serial date (61..2958465), Unix seconds (10^8..10^10) "
        "nor Unix milliseconds (10^11..10^13)"
    )


def _from_text(s: str, tz: ZoneInfo) -> tuple[datetime, bool]:
    m = _DATETIME.match(s) or _COMPACT.match(s)
    if m is None:
        if _DMY.match(s):
            raise ValueError(f"{s!r}: day/month order is ambiguous; write YYYY-MM-DD (ISO-8601)")
        raise ValueError(f"{s!r} is not a timestamp (write ISO-8601, e.g. 2024-01-30T12:00:00+08:00)")
    g = m.groupdict()
    frac = (g.get("f") or "").ljust(6, "0")[:6]
    try:
        dt = datetime(
            int(g["y"]), int(g.get("m") or g.get("zm") or 0), int(g.get("d") or g.get("zd") or 0),
            int(g.get("H") or 0), int(g.get("M") or 0), int(g.get("S") or 0), int(frac or 0),
        )
    except ValueError as e:
        raise ValueError(f"{s!r} is not a valid date or time: {e}") from None
    if g.get("z"):
        return dt.replace(tzinfo=_offset(g["z"])), False
    return dt.replace(tzinfo=tz), True


def to_utc(value: str | int | float | datetime | date, default_tz: str = DEFAULT_TZ) -> Instant:
    """Parse ``value`` into an :class:`Instant`; a value without a zone is read in ``default_tz``.

    Examples
    --------
    >>> to_utc("2024-01-30T12:00:00+08:00")
    Instant(utc='2024-01-30T04:00:00Z', tz_assumed=None)
    >>> to_utc("2024-01-30 04:00:00Z") == to_utc("2024-01-29T23:00:00-05:00")
    True
    >>> to_utc("2024-01-30 12:00")
    Instant(utc='2024-01-30T04:00:00Z', tz_assumed='Asia/Shanghai')
    >>> to_utc(45321.5, "Europe/Paris")
    Instant(utc='2024-01-30T11:00:00Z', tz_assumed='Europe/Paris')
    >>> to_utc(1706587200000).utc
    '2024-01-30T04:00:00Z'

    Raises
    ------
    ValueError
        For text that is not a timestamp, an ambiguous day/month order, an impossible date, or
        a number in none of the numeric ranges; the message names the value.
    ConfigError
        For an unknown ``default_tz``.
    """
    tz = zone(default_tz)
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a timestamp")
    if isinstance(value, datetime):
        dt, assumed = (value.replace(tzinfo=tz), True) if value.tzinfo is None else (value, False)
    elif isinstance(value, date):
        dt, assumed = datetime(value.year, value.month, value.day, tzinfo=tz), True
    elif isinstance(value, (int, float)):
        dt, assumed = _from_number(float(value), tz)
    elif isinstance(value, str):
        s = value.strip()
        if not s:
            raise ValueError("empty timestamp")
        dt, assumed = _from_number(float(s), tz) if _NUMBER.match(s) else _from_text(s, tz)
    else:
        raise ValueError(f"{type(value).__name__} {value!r} is not a timestamp")
    try:
        year = dt.astimezone(UTC).year
    except OverflowError:  # 9999-12-31T23:00-12:00 is in the year 10000
        year = 0
    if not 1900 <= year <= 9999:
        raise ValueError(f"{value!r} is outside the years 1900-9999")
    return Instant(format_utc(dt), default_tz if assumed else None)
