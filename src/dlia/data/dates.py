"""The dates task: dates written in many human styles → ISO ``YYYY-MM-DD``, a seq2seq task we generate.

Each example is a pair ``(source, target)``: ``("Wednesday, 25 November 2026", "2026-11-25")``.
Both sides are read character by character (``source_vocab``, ``target_vocab``): the models are
char-level. Dates are drawn uniformly from the days of a year range (1900–2099 by default), so leap
years and month lengths come from ``datetime`` and weekdays are the true ones.

**Styles.** ``STYLES`` maps a name to an example (25 November 2026). Styles made of words come in
case variants, drawn per example: as written, lower case, UPPER CASE and Title Case.

**Held out.** ``HELD_OUT_STYLES`` (3 styles) never appear in ``TRAIN_STYLES``: a model trained on
the training styles is tested on styles it has never seen. Each held-out style recombines pieces the
training styles teach (``dmon_dash`` "25-Nov-2026": the abbreviated month of ``mon_day_apos`` and the
D-M-Y dashes of ``dmy_dash``; ``the_ordinal_of_comma`` "the 25th of November, 2026": the ordinals of
``ordinal_of``; ``words_the_of`` "the twenty-fifth of november two thousand twenty-six": the number
words of ``words``).

**No ambiguity.** No string means two dates, within a style or across styles (the tests check it on
thousands of dates):

- numeric styles fix one field order per separator: ``/`` is M/D/Y (US) when the year is last and
  Y/M/D when it is first (a 4-digit year tells them apart), ``.`` and ``-`` are D.M.Y and D-M-Y;
  no style has D/M/Y, so "05/11/2026" is always 11 May;
- two-digit years ("Nov 25, '26", "25.11.26") mean 20yy: those styles draw years from 2000–2099 only,
  so "'26" is never 1926;
- months and weekdays in words are unambiguous; numbers in words follow one grammar (``number_words``).

Numbers in words: days as ordinals ("first" … "thirty-first"), years as spoken in English:
1900 "nineteen hundred", 1905 "nineteen oh five", 1999 "nineteen ninety-nine", 2000 "two thousand",
2026 "two thousand twenty-six".
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence

import numpy

from dlia.text import CharVocab

#: the years a date may come from (inclusive)
MIN_YEAR, MAX_YEAR = 1900, 2099
#: the years of the styles that write two digits ('26 = 2026)
TWO_DIGIT_YEARS = (2000, 2099)

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty", 6: "sixty", 7: "seventy", 8: "eighty", 9: "ninety"}
_ORDINAL_ONES = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                 "nine": "ninth", "twelve": "twelfth"}


def number_words(n: int) -> str:
    """``n`` (0..99) in words: 7 "seven", 21 "twenty-one", 40 "forty"."""
    if not 0 <= n <= 99:
        raise ValueError(f"number_words: {n} is outside 0..99")
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")


def ordinal_words(n: int) -> str:
    """``n`` (1..99) as an ordinal in words: 1 "first", 12 "twelfth", 20 "twentieth", 25 "twenty-fifth"."""
    if not 1 <= n <= 99:
        raise ValueError(f"ordinal_words: {n} is outside 1..99")
    words = number_words(n)
    head, _, last = words.rpartition("-")
    if last in _ORDINAL_ONES:
        last = _ORDINAL_ONES[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return f"{head}-{last}" if head else last


def ordinal_suffix(n: int) -> str:
    """``n`` with its English suffix: 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, 22nd, 23rd, 31st."""
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def year_words(year: int) -> str:
    """A year of 1900..2099 as spoken: "nineteen hundred", "nineteen oh five", "nineteen ninety-nine",
    "two thousand", "two thousand twenty-six"."""
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValueError(f"year_words: {year} is outside {MIN_YEAR}..{MAX_YEAR}")
    century, rest = divmod(year, 100)
    if century == 20:
        return "two thousand" + (f" {number_words(rest)}" if rest else "")
    if rest == 0:
        return "nineteen hundred"
    return "nineteen " + (f"oh {number_words(rest)}" if rest < 10 else number_words(rest))


def _mon(d: datetime.date) -> str:
    return MONTHS[d.month - 1][:3]


#: style name → how it writes a date (case variants are applied afterwards, to styles with letters)
_WRITERS: dict[str, Callable[[datetime.date], str]] = {
    "ordinal_of": lambda d: f"{ordinal_suffix(d.day)} of {MONTHS[d.month - 1]} {d.year}",
    "mon_day_apos": lambda d: f"{_mon(d)} {d.day}, '{d.year % 100:02d}",
    "dmy_dotted": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",
    "mdy_slash": lambda d: f"{d.month:02d}/{d.day:02d}/{d.year}",
    "ymd_slash": lambda d: f"{d.year}/{d.month:02d}/{d.day:02d}",
    "month_ordinal_comma": lambda d: f"{MONTHS[d.month - 1]} {ordinal_suffix(d.day)}, {d.year}",
    "words": lambda d: f"{ordinal_words(d.day)} {MONTHS[d.month - 1].lower()} {year_words(d.year)}",
    "weekday_day_month": lambda d: f"{WEEKDAYS[d.weekday()]}, {d.day} {MONTHS[d.month - 1]} {d.year}",
    "dmon_dash": lambda d: f"{d.day:02d}-{_mon(d)}-{d.year}",
    "day_month_year": lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",
    "month_day_year": lambda d: f"{MONTHS[d.month - 1]} {d.day} {d.year}",
    "short_weekday": lambda d: f"{WEEKDAYS[d.weekday()][:3]} {d.day} {_mon(d)} {d.year}",
    "the_ordinal_of_comma": lambda d: f"the {ordinal_suffix(d.day)} of {MONTHS[d.month - 1]}, {d.year}",
    "compact": lambda d: f"{d.year}{d.month:02d}{d.day:02d}",
    "dmy_dash": lambda d: f"{d.day}-{d.month}-{d.year}",
    "dmy_dotted_short": lambda d: f"{d.day}.{d.month}.{d.year % 100:02d}",
    "words_the_of": lambda d: f"the {ordinal_words(d.day)} of {MONTHS[d.month - 1].lower()} {year_words(d.year)}",
    "month_words": lambda d: f"{MONTHS[d.month - 1].lower()} {ordinal_words(d.day)}, {year_words(d.year)}",
    "mdy_slash_short": lambda d: f"{d.month}/{d.day}/{d.year}",
    "mon_day_year_weekday": lambda d: f"{WEEKDAYS[d.weekday()]} {_mon(d)} {d.day} {d.year}",
}

#: the styles that write two-digit years: they draw years from TWO_DIGIT_YEARS only
TWO_DIGIT_STYLES = frozenset({"mon_day_apos", "dmy_dotted_short"})

#: every style, with 25 November 2026 as written by it (before any case variant)
STYLES: dict[str, str] = {name: write(datetime.date(2026, 11, 25)) for name, write in _WRITERS.items()}
#: styles never shown in training: the test of generalising to unseen ways of writing a date
HELD_OUT_STYLES: tuple[str, ...] = ("dmon_dash", "the_ordinal_of_comma", "words_the_of")
#: the styles to train on (all the others)
TRAIN_STYLES: tuple[str, ...] = tuple(s for s in STYLES if s not in HELD_OUT_STYLES)

#: the case variants of styles with letters, drawn uniformly per example
CASES: tuple[str, ...] = ("as written", "lower", "upper", "title")


def _title(text: str) -> str:
    return " ".join(w[:1].upper() + w[1:] for w in text.split(" "))


def _apply_case(text: str, case: str) -> str:
    if case == "lower":
        return text.lower()
    if case == "upper":
        return text.upper()
    if case == "title":
        return _title(text)
    return text


def write_date(date: datetime.date, style: str, case: str = "as written") -> str:
    """``date`` written in ``style`` (a key of ``STYLES``) with a case variant of ``CASES``.

    Example:
        >>> write_date(datetime.date(2026, 11, 25), "words", "title")
        'Twenty-fifth November Two Thousand Twenty-six'
    """
    if style not in _WRITERS:
        raise ValueError(f"unknown date style {style!r}; the styles are {', '.join(STYLES)}")
    if case not in CASES:
        raise ValueError(f"unknown case variant {case!r}; use one of {', '.join(CASES)}")
    lo, hi = TWO_DIGIT_YEARS if style in TWO_DIGIT_STYLES else (MIN_YEAR, MAX_YEAR)
    if not lo <= date.year <= hi:
        raise ValueError(f"style {style!r} writes only years {lo}..{hi}, got {date.year}")
    return _apply_case(_WRITERS[style](date), case)


def dates_dataset(n: int, styles: Sequence[str] = TRAIN_STYLES, seed: int = 0,
                  years: tuple[int, int] = (MIN_YEAR, MAX_YEAR)) -> list[tuple[str, str]]:
    """``n`` seeded (source, target) pairs: a style drawn uniformly from ``styles``, a date drawn
    uniformly from the days of ``years`` (inclusive; 2000.. for two-digit styles), a case variant
    drawn uniformly for styles with letters; target ``date.isoformat()``.

    The same ``(n, styles, seed, years)`` gives the same pairs; the first ``k`` pairs of ``n > k``
    are the ``k`` pairs of a smaller call.

    Example:
        >>> dates_dataset(2, seed=0)  # doctest: +SKIP
        [('dec 3, 2051', '2051-12-03'), ('12.04.1977', '1977-04-12')]
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"dates_dataset: n must be a non-negative integer, got {n!r}")
    styles = [styles] if isinstance(styles, str) else list(styles)
    if not styles:
        raise ValueError("dates_dataset: no styles")
    for s in styles:
        if s not in _WRITERS:
            raise ValueError(f"dates_dataset: unknown style {s!r}; the styles are {', '.join(STYLES)}")
    lo, hi = years
    if not MIN_YEAR <= lo <= hi <= MAX_YEAR:
        raise ValueError(f"dates_dataset: years must satisfy {MIN_YEAR} <= first <= last <= {MAX_YEAR}, got {years}")
    spans = {}
    for s in styles:
        s_lo, s_hi = (max(lo, TWO_DIGIT_YEARS[0]), min(hi, TWO_DIGIT_YEARS[1])) if s in TWO_DIGIT_STYLES else (lo, hi)
        if s_lo > s_hi:
            raise ValueError(f"dates_dataset: style {s!r} writes only years {TWO_DIGIT_YEARS[0]}..{TWO_DIGIT_YEARS[1]}, "
                             f"outside {lo}..{hi}")
        first = datetime.date(s_lo, 1, 1).toordinal()
        spans[s] = (first, datetime.date(s_hi, 12, 31).toordinal() - first + 1)
    rng = numpy.random.Generator(numpy.random.PCG64(seed))
    pairs = []
    for _ in range(n):  # one draw of each kind per example, so a prefix does not depend on n
        style = styles[int(rng.integers(len(styles)))]
        first, days = spans[style]
        day = int(rng.integers(days))
        case = CASES[int(rng.integers(len(CASES)))]
        date = datetime.date.fromordinal(first + day)
        text = _WRITERS[style](date)
        pairs.append((_apply_case(text, case) if any(c.isalpha() for c in text) else text, date.isoformat()))
    return pairs


def _letters() -> str:
    words = MONTHS + WEEKDAYS + _ONES + list(_TENS.values()) + list(_ORDINAL_ONES.values()) + \
        ["th", "st", "nd", "rd", "ieth", "of", "the", "oh", "hundred", "thousand"]
    return "".join(sorted({c for w in words for c in w.lower() + w.upper()}))


#: every character a source may hold (letters of the month, weekday and number words in both cases)
SOURCE_CHARS: str = "".join(sorted(set(_letters()) | set("0123456789 ,.-/'")))
#: every character a target may hold
TARGET_CHARS: str = "-0123456789"


def source_vocab() -> CharVocab:
    """The character vocabulary of every source any style can write."""
    return CharVocab(SOURCE_CHARS)


def target_vocab() -> CharVocab:
    """The character vocabulary of ISO dates: the ten digits and ``-``."""
    return CharVocab(TARGET_CHARS)
