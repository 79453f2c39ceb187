"""Whether the payee a pasted M-Pesa SMS names is our till.

A customer's SMS names the payee, never the till number (formats doc §3.1). A genuine SMS for
one of our receipts names our till, so an SMS pairing our receipt with any other payee has
been altered (or pays someone else). Pure: only ``TILL_NAME`` and ``TILL_OTHER_NAMES`` are read
from the settings, and only when no ``names`` are given.

What counts as us (``payee_is_us``), after normalising both names (``_forms``):
- Case, spacing and punctuation never matter: ``tillbook  data.``, ``TILLBOOKDATA``,
  ``Till-Book, Data`` are all ``TILLBOOK DATA``. Only letters and digits are significant
  (any script's: a look-alike letter from another alphabet is a different name).
- ``&`` and ``and`` are the same word, and may be left out (``A & B``, ``A AND B``, ``A B``).
- Company words after the name may be added or left out: up to two of ``SUFFIXES``
  (``TILLBOOK DATA LTD``, ``TILLBOOK DATA ENTERPRISES``, ``TILLBOOK DATA CO LTD``; and
  ``TILLBOOK DATA`` when our name is set as ``TILLBOOK DATA LTD``).
- M-Pesa cuts long names: a name cut short counts when what is left is the start of one of our
  names (with or without company words) and keeps at least ``MIN_TRUNCATED`` significant
  characters, or the whole name when it is shorter (``TILLBOOK DAT``, ``TILLBOOK DATA LT``,
  and ``TILLBOOK`` itself: a cut at 8 characters cannot be told from a payee of that name).
- Anything else is another payee: an extra or changed letter (``TILLBOOKS DATA``,
  ``TILLBOK DATA``), a part of the name that is not its start (``BOOK DATA``), other words
  (``TILL DATA``, ``TILLBOOK DATA SERVICES``), a phone number after the name (send money to a
  person: ``SOPHIA MWENI 0702972812``), and a name with nothing significant in it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from django.conf import settings

# A name cut short must keep at least this many significant characters (letters and digits).
MIN_TRUNCATED = 8
# Words a registered business name may carry after the trading name (compared normalised).
SUFFIXES = (
    "ltd",
    "limited",
    "co",
    "company",
    "enterprise",
    "enterprises",
    "shop",
    "store",
    "stores",
)
MAX_SUFFIX_WORDS = 2
_WORDS_RE = re.compile(r"[^\W_]+")


def our_names() -> list[str]:
    """The names the till trades or has traded under: TILL_NAME, then TILL_OTHER_NAMES."""
    names = [getattr(settings, "TILL_NAME", "") or ""]
    names.extend(getattr(settings, "TILL_OTHER_NAMES", None) or [])
    return [n.strip() for n in names if isinstance(n, str) and n.strip()]


def _words(name: str) -> list[str]:
    text = unicodedata.normalize("NFKC", name or "").casefold()
    return _WORDS_RE.findall(text.replace("&", " and "))


def _forms(name: str) -> tuple[str, str]:
    """Two spellings, compared form by form: ``&`` as ``and``; ``&`` and ``and`` left out."""
    words = _words(name)
    return "".join(words), "".join(w for w in words if w != "and")


def _strip_suffixes(form_words: list[str]) -> list[str]:
    """The name without the company words it ends with (at most MAX_SUFFIX_WORDS of them, and
    never all of it): "TILLBOOK DATA LTD" may be printed "TILLBOOK DATA"."""
    words = list(form_words)
    for _ in range(MAX_SUFFIX_WORDS):
        if len(words) > 1 and words[-1] in SUFFIXES:
            words.pop()
    return words


def _suffix_run(rest: str, words_left: int = MAX_SUFFIX_WORDS) -> bool:
    """``rest`` is up to ``words_left`` company words run together, the last maybe cut short."""
    if not rest:
        return True
    if words_left == 0:
        return False
    for suffix in SUFFIXES:
        if suffix.startswith(rest):
            return True  # the last word, whole or cut short
        if rest.startswith(suffix) and _suffix_run(rest[len(suffix) :], words_left - 1):
            return True
    return False


def _matches(candidate: str, base: str) -> bool:
    if not candidate or not base:
        return False
    if candidate.startswith(base):
        return _suffix_run(candidate[len(base) :])
    # Cut short by M-Pesa: the start of our name, long enough to be ours.
    return base.startswith(candidate) and len(candidate) >= min(MIN_TRUNCATED, len(base))


def _bases(name: str) -> tuple[str, str]:
    words = _words(name)
    full = _strip_suffixes(words)
    without_and = _strip_suffixes([w for w in words if w != "and"])
    return "".join(full), "".join(without_and)


def payee_is_us(name: str, names: Iterable[str] | None = None) -> bool:
    """True when ``name`` (the payee a pasted SMS names) is our till: one of ``names``
    (default: ``our_names()``) under the rules in the module docstring. Never raises."""
    candidate = _forms(name if isinstance(name, str) else "")
    for known in our_names() if names is None else names:
        bases = _bases(known)
        if any(_matches(c, b) for c, b in zip(candidate, bases, strict=True)):
            return True
    return False
