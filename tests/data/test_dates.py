"""``dlia.data.dates``: every style read back by an independent parser written here (regular
expressions and hand-made number tables, not the generator's code), no string meaning two dates,
held-out styles absent from training data, seeding, number words, leap years and month lengths."""

from __future__ import annotations

import datetime
import re

import pytest

from dlia.data.dates import (
    CASES,
    HELD_OUT_STYLES,
    SOURCE_CHARS,
    STYLES,
    TARGET_CHARS,
    TRAIN_STYLES,
    dates_dataset,
    number_words,
    ordinal_words,
    source_vocab,
    target_vocab,
    write_date,
    year_words,
)

MONTH = {m: i + 1 for i, m in enumerate(["january", "february", "march", "april", "may", "june", "july", "august",
                                         "september", "october", "november", "december"])}
MON = {m[:3]: i for m, i in MONTH.items()}
WEEKDAY = {d: i for i, d in enumerate(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"])}
WD = {d[:3]: i for d, i in WEEKDAY.items()}

UNITS = "one two three four five six seven eight nine".split()
TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
UNIT_ORD = "first second third fourth fifth sixth seventh eighth ninth".split()
TEEN_ORD = "tenth eleventh twelfth thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth".split()
TENS_ORD = {"twentieth": 20, "thirtieth": 30}

CARDINAL = {w: i + 1 for i, w in enumerate(UNITS)} | {w: i + 10 for i, w in enumerate(TEENS)} | TENS
CARDINAL |= {f"{t}-{u}": v + i + 1 for t, v in TENS.items() for i, u in enumerate(UNITS)}
ORDINAL = {w: i + 1 for i, w in enumerate(UNIT_ORD)} | {w: i + 10 for i, w in enumerate(TEEN_ORD)} | TENS_ORD
ORDINAL |= {f"{t}-{u}": v + i + 1 for t, v in TENS.items() if v <= 30 for i, u in enumerate(UNIT_ORD)}


def _year_from_words(text: str) -> int | None:
    if text == "two thousand":
        return 2000
    if text == "nineteen hundred":
        return 1900
    if text.startswith("two thousand "):
        rest = CARDINAL.get(text.removeprefix("two thousand "))
        return None if rest is None else 2000 + rest
    if text.startswith("nineteen oh "):
        rest = CARDINAL.get(text.removeprefix("nineteen oh "))
        return None if rest is None or rest > 9 else 1900 + rest
    if text.startswith("nineteen "):
        rest = CARDINAL.get(text.removeprefix("nineteen "))
        return None if rest is None or rest < 10 else 1900 + rest
    return None


def _ord_suffix_ok(day: int, suffix: str) -> bool:
    return suffix == ("th" if day in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th"))


D2 = r"(\d\d)"
D12 = r"([1-9]\d?)"  # an unpadded number
Y4 = r"(\d{4})"


def _date(y: int, m: int, d: int, weekday: int | None = None) -> datetime.date | None:
    try:
        date = datetime.date(y, m, d)
    except ValueError:
        return None
    if weekday is not None and date.weekday() != weekday:
        return None
    return date


def _words_date(day: str, month: str, year: str) -> datetime.date | None:
    y = _year_from_words(year)
    if day not in ORDINAL or month not in MONTH or y is None:
        return None
    return _date(y, MONTH[month], ORDINAL[day])


def _suffixed(day: str, suffix: str, month: str, year: str) -> datetime.date | None:
    if not _ord_suffix_ok(int(day), suffix) or month not in MONTH:
        return None
    return _date(int(year), MONTH[month], int(day))


#: style → (pattern on the lower-cased source, date from the groups); written from the examples in STYLES
PARSERS = {
    "ordinal_of": (rf"{D12}(st|nd|rd|th) of ([a-z]+) {Y4}", _suffixed),
    "mon_day_apos": (rf"([a-z]{{3}}) {D12}, '{D2}", lambda m, d, y: m in MON and _date(2000 + int(y), MON[m], int(d))),
    "dmy_dotted": (rf"{D2}\.{D2}\.{Y4}", lambda d, m, y: _date(int(y), int(m), int(d))),
    "mdy_slash": (rf"{D2}/{D2}/{Y4}", lambda m, d, y: _date(int(y), int(m), int(d))),
    "ymd_slash": (rf"{Y4}/{D2}/{D2}", lambda y, m, d: _date(int(y), int(m), int(d))),
    "month_ordinal_comma": (rf"([a-z]+) {D12}(st|nd|rd|th), {Y4}", lambda m, d, s, y: _suffixed(d, s, m, y)),
    "words": (r"([a-z-]+) ([a-z]+) ([a-z -]+)", _words_date),
    "weekday_day_month": (rf"([a-z]+), {D12} ([a-z]+) {Y4}",
                          lambda w, d, m, y: w in WEEKDAY and m in MONTH and _date(int(y), MONTH[m], int(d), WEEKDAY[w])),
    "dmon_dash": (rf"{D2}-([a-z]{{3}})-{Y4}", lambda d, m, y: m in MON and _date(int(y), MON[m], int(d))),
    "day_month_year": (rf"{D12} ([a-z]+) {Y4}", lambda d, m, y: m in MONTH and _date(int(y), MONTH[m], int(d))),
    "month_day_year": (rf"([a-z]+) {D12} {Y4}", lambda m, d, y: m in MONTH and _date(int(y), MONTH[m], int(d))),
    "short_weekday": (rf"([a-z]{{3}}) {D12} ([a-z]{{3}}) {Y4}",
                      lambda w, d, m, y: w in WD and m in MON and _date(int(y), MON[m], int(d), WD[w])),
    "the_ordinal_of_comma": (rf"the {D12}(st|nd|rd|th) of ([a-z]+), {Y4}", _suffixed),
    "compact": (rf"{Y4}{D2}{D2}", lambda y, m, d: _date(int(y), int(m), int(d))),
    "dmy_dash": (rf"{D12}-{D12}-{Y4}", lambda d, m, y: _date(int(y), int(m), int(d))),
    "dmy_dotted_short": (rf"{D12}\.{D12}\.{D2}", lambda d, m, y: _date(2000 + int(y), int(m), int(d))),
    "words_the_of": (r"the ([a-z-]+) of ([a-z]+) ([a-z -]+)", _words_date),
    "month_words": (r"([a-z]+) ([a-z-]+), ([a-z -]+)", lambda m, d, y: _words_date(d, m, y)),
    "mdy_slash_short": (rf"{D12}/{D12}/{Y4}", lambda m, d, y: _date(int(y), int(m), int(d))),
    "mon_day_year_weekday": (rf"([a-z]+) ([a-z]{{3}}) {D12} {Y4}",
                             lambda w, m, d, y: w in WEEKDAY and m in MON and _date(int(y), MON[m], int(d), WEEKDAY[w])),
}


def parse(style: str, text: str) -> datetime.date | None:
    """The date ``text`` means in ``style``, None if it is not written in that style."""
    pattern, make = PARSERS[style]
    m = re.fullmatch(pattern, text.lower())
    return (make(*m.groups()) or None) if m else None


def meanings(text: str) -> set[datetime.date]:
    """Every date any style's parser reads from ``text``."""
    return {d for s in PARSERS if (d := parse(s, text)) is not None}


EDGE_DATES = [datetime.date(1900, 1, 1), datetime.date(1900, 2, 28), datetime.date(1904, 2, 29),
              datetime.date(2000, 2, 29), datetime.date(2000, 1, 1), datetime.date(2001, 9, 9),
              datetime.date(2011, 11, 11), datetime.date(2012, 12, 12), datetime.date(2026, 11, 25),
              datetime.date(2099, 12, 31), datetime.date(1999, 12, 31), datetime.date(1950, 6, 30),
              datetime.date(2023, 4, 30), datetime.date(2023, 3, 31), datetime.date(1913, 5, 13)]


def test_styles_are_many_and_split() -> None:
    assert len(STYLES) >= 15 and set(PARSERS) == set(STYLES)
    assert len(HELD_OUT_STYLES) == 3 and not set(HELD_OUT_STYLES) & set(TRAIN_STYLES)
    assert set(HELD_OUT_STYLES) | set(TRAIN_STYLES) == set(STYLES)
    assert STYLES["ordinal_of"] == "25th of November 2026" and STYLES["mon_day_apos"] == "Nov 25, '26"
    assert STYLES["words"] == "twenty-fifth november two thousand twenty-six"
    assert STYLES["weekday_day_month"] == "Wednesday, 25 November 2026"


@pytest.mark.parametrize("style", list(STYLES))
def test_every_style_parses_back(style: str) -> None:
    two_digit = style in ("mon_day_apos", "dmy_dotted_short")
    dates = [d for d in EDGE_DATES if not two_digit or d.year >= 2000]
    dates += [datetime.date.fromisoformat(t) for _, t in dates_dataset(300, styles=[style], seed=7)]
    for date in dates:
        for case in CASES:
            text = write_date(date, style, case)
            assert parse(style, text) == date, (style, case, text)
            assert meanings(text) == {date}, (style, case, text)  # no other style reads it as another date


def test_dataset_pairs_mean_one_date_each() -> None:
    pairs = dates_dataset(5000, styles=list(STYLES), seed=1)
    for source, target in pairs:
        assert meanings(source) == {datetime.date.fromisoformat(target)}, source
        assert set(source) <= set(SOURCE_CHARS) and set(target) <= set(TARGET_CHARS)
    assert {s for s, _ in pairs} & {s.upper() for s, _ in pairs if any(c.isalpha() for c in s)}  # case variants occur
    source_vocab().encode("".join(s for s, _ in pairs))
    target_vocab().encode("".join(t for _, t in pairs))


def test_held_out_styles_never_in_training() -> None:
    train = dates_dataset(5000, seed=3)
    for source, _ in train:
        assert not any(parse(s, source) for s in HELD_OUT_STYLES), source
    held = dates_dataset(500, styles=HELD_OUT_STYLES, seed=3)
    for source, target in held:
        assert {s for s in HELD_OUT_STYLES if parse(s, source)} and meanings(source) == {datetime.date.fromisoformat(target)}


def test_seeding() -> None:
    a = dates_dataset(200, seed=5)
    assert a == dates_dataset(200, seed=5)
    assert a != dates_dataset(200, seed=6)
    assert dates_dataset(50, seed=5) == a[:50]
    assert dates_dataset(0) == []


def test_number_words() -> None:
    expected = ("first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
                "fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth twenty-first "
                "twenty-second twenty-third twenty-fourth twenty-fifth twenty-sixth twenty-seventh twenty-eighth "
                "twenty-ninth thirtieth thirty-first").split()
    assert [ordinal_words(n) for n in range(1, 32)] == expected
    assert [number_words(n) for n in (0, 7, 13, 20, 21, 40, 45, 99)] == \
        ["zero", "seven", "thirteen", "twenty", "twenty-one", "forty", "forty-five", "ninety-nine"]
    assert year_words(2026) == "two thousand twenty-six"
    assert year_words(1999) == "nineteen ninety-nine"
    assert year_words(2000) == "two thousand" and year_words(1900) == "nineteen hundred"
    assert year_words(1905) == "nineteen oh five" and year_words(2010) == "two thousand ten"
    for y in range(1900, 2100):
        assert _year_from_words(year_words(y)) == y


def test_leap_years_and_month_lengths() -> None:
    pairs = dates_dataset(30000, styles=["compact"], seed=2)
    dates = [datetime.date.fromisoformat(t) for _, t in pairs]  # fromisoformat refuses 2023-02-29, 2023-04-31
    assert all(s == d.strftime("%Y%m%d") for (s, _), d in zip(pairs, dates))
    leap_days = [d for d in dates if (d.month, d.day) == (2, 29)]
    assert leap_days and all(d.year % 4 == 0 and d.year != 1900 for d in leap_days)
    longest = {m: max(d.day for d in dates if d.month == m) for m in range(1, 13)}
    assert longest == {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}
    assert min(d.year for d in dates) == 1900 and max(d.year for d in dates) == 2099
    weekdays = dates_dataset(300, styles=["weekday_day_month"], seed=2)
    for s, t in weekdays:
        assert s.split(",")[0].lower() == datetime.date.fromisoformat(t).strftime("%A").lower()


def test_two_digit_years_are_this_century() -> None:
    for _, t in dates_dataset(2000, styles=["mon_day_apos", "dmy_dotted_short"], seed=4):
        assert 2000 <= int(t[:4]) <= 2099
    with pytest.raises(ValueError, match="writes only years 2000..2099"):
        write_date(datetime.date(1926, 1, 1), "mon_day_apos")
    with pytest.raises(ValueError, match="writes only years 2000..2099"):
        dates_dataset(5, styles=["mon_day_apos"], years=(1900, 1999))


@pytest.mark.parametrize("kwargs,message", [
    ({"n": -1}, "n must be a non-negative integer"),
    ({"n": 3, "styles": []}, "no styles"),
    ({"n": 3, "styles": ["rfc2822"]}, "unknown style 'rfc2822'"),
    ({"n": 3, "years": (1800, 1900)}, "years must satisfy"),
])
def test_bad_arguments(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        dates_dataset(**kwargs)
