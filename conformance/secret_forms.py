"""What a secret is, in one place: which headers hold one, and every form a secret's value takes in text.

Every writer of the run (reports, HAR, terminal, curl lines, logs) and the AUTH-007 check find secrets
through `SecretFinder`, so what counts as "the key, in some form" is decided here only.

A secret is found by its value, not by where it is expected: an echoing server, an exception message or a
URL with userinfo can carry it anywhere. The forms (`literal_forms`, then each character widened by
`_char`):

- the secret itself, in any case (upper, lower, swapped), where it is `distinctive`;
- each character as itself or escaped as text escapes it: URL (`%2F`, `+` for a space), JSON and Python
  (`\\u002f`, `\\/`, `\\n`, `\\x2f`, and the `\\xHH` bytes of a `b'...'` repr), HTML and XML (`&#47;`,
  `&#x2F;`, `&sol;`), an escape escaped again (`\\\\n`, `&amp;#47;`, `\\&quot;`), so a key written by any
  mix of these is still the key;
- base64 and base64url of its UTF-8 bytes, at each of the three alignments inside a longer encoding (Basic
  auth's `user:key`, a JWT), by the characters that depend only on the secret's own bytes; hex of its UTF-8
  bytes, either case; both as they are or with `/`, `+`, `=` escaped as JSON or a URL escapes them;
- with Unicode format characters (category Cf: zero-width space, joiners, BOM, bidi marks, soft hyphen),
  raw, escaped, or as UTF-8 read as Latin-1, ignored wherever they are inserted.
- for a distinctive secret, what a normalised view of the text shows (layered and other escapes undone,
  line breaks, markup and invisible fillers deleted, NFKC): see "the deep view" below, with its cost.

Each pattern starts with a class of the characters its forms can start with, so the regex engine skips
every other position at C speed; text that is ASCII with nothing that starts an escape is searched for the
literal forms only. Secrets are compiled in groups of `_GROUP` (a proxy learns its clients' keys one by one).

Secrets shorter than MIN_SECRET are never searched. A secret that is not `distinctive` (a word such as
`test`, a short key) is found only as itself, in its own case, where it stands alone (not inside `pytest`
or `max_tokens`: there it cannot be the secret, and masking it would corrupt a report's own text); its
base64 forms are found wherever they occur. `weak_secret_warning` is the line a run prints for such a key.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import html
import html.entities
import json
import re
import string
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from urllib.parse import unquote, urlsplit

MASK = "***"
MIN_SECRET = 4
# the request headers that carry an API key: both profiles' and the bring-your-own OpenAI key's (AUTH-007
# looks for what they sent in the answer)
KEY_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "x-openai-api-key"})
# headers whose values are credentials whatever they hold: the key headers, a proxy's credentials, cookies
SECRET_HEADERS = KEY_HEADERS | {"proxy-authorization", "cookie", "set-cookie"}
# a header whose name contains one of these (any case) holds a credential
SECRET_NAME_PARTS = ("key", "token", "secret", "auth", "password", "cookie")
# the schemes a credential header's value may start with; the secret is what follows
AUTH_SCHEMES = ("bearer", "basic", "token")
# base64 cores shorter than this would match ordinary text by chance
_MIN_CORE = 8


def is_secret_name(name: str, declared: Iterable[str] = ()) -> bool:
    """Whether a header (or query parameter) of this name holds a credential: one of SECRET_HEADERS, a name
    containing key, token, secret, auth, password or cookie, or one of the `declared` secret headers."""
    lowered = name.lower()
    return (lowered in SECRET_HEADERS or any(part in lowered for part in SECRET_NAME_PARTS)
            or lowered in {d.lower() for d in declared})


def bare(value: str) -> str:
    """A credential header's value without its scheme (`Bearer sk-1` -> `sk-1`), stripped."""
    head, sep, rest = value.strip().partition(" ")
    return rest.strip() if sep and head.lower() in AUTH_SCHEMES else value.strip()


def url_passwords(url: str | None) -> list[str]:
    """The password of a URL's userinfo (`https://user:pass@host`), as written and percent-decoded; a URL
    without a scheme (`user:pass@proxy:3128`) is read as http://. Empty when there is none or the URL cannot
    be read."""
    if not url:
        return []
    try:
        password = urlsplit(url if "://" in url else f"http://{url}").password
    except ValueError:
        return []
    return list(dict.fromkeys([password, unquote(password)])) if password else []


def distinctive(secret: str) -> bool:
    """Whether `secret` can only be itself wherever it occurs: 16 characters or more, or 8 or more that mix
    letters and digits, as generated keys do. A shorter key, or a word (`conformance`, `prompt_tokens`),
    also occurs as part of ordinary text."""
    if len(secret) >= 16:
        return True
    return len(secret) >= 8 and any(c.isdigit() for c in secret) and any(c.isalpha() for c in secret)


def weak_secret_warning(secret: str | None, what: str = "the API key") -> str | None:
    """One line (without the secret) saying that `secret` cannot be masked in all its forms, or None: a
    secret shorter than MIN_SECRET is never masked; one that is not `distinctive` only as itself, in its own
    case, where it stands alone (masking its other forms would mask ordinary words of the reports)."""
    if not secret:
        return None
    if len(secret) < MIN_SECRET:
        return (f"warning: {what} is {len(secret)} characters long, too short to be told from ordinary text: "
                "it is not masked in the reports, the HAR or the terminal")
    if not distinctive(secret):
        return (f"warning: {what} is short or word-like ({len(secret)} characters, not 16 or more, nor 8 or more "
                "mixing letters and digits): it is masked only as itself, in its own case; its other forms "
                "(case-changed, hex, escaped, encoded) may reach the reports")
    return None


# -- the forms -------------------------------------------------------------------------------------------------


def base64_cores(raw: bytes) -> list[str]:
    """The base64 text of `raw` at each of the three byte alignments inside a longer buffer: the characters
    that depend only on `raw`'s own bytes (the first and last quantum may mix in the bytes around it).
    Cores shorter than 8 characters are left out; base64url is matched by the same texts (`_plain_char`)."""
    out: list[str] = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode("ascii")
        start = (shift * 8 + 5) // 6
        end = len(encoded) - (4 if (shift + len(raw)) % 3 else 0)
        core = encoded[start:end].rstrip("=")
        if len(core) >= _MIN_CORE:
            out.append(core)
    return list(dict.fromkeys(out))


def literal_forms(secret: str) -> dict[str, list[str]]:
    """Form name -> the literal texts of `secret` before escaping: `itself`, `base64` (at each alignment;
    the whole encoding where the secret is too short for a core; base64url is matched by the same texts, see
    `_plain_char`), and `hex` (distinctive secrets only: a short hex run is a number)."""
    raw = secret.encode("utf-8", errors="surrogatepass")
    whole = base64.b64encode(raw).decode("ascii")
    forms = {"itself": [secret], "base64": base64_cores(raw) or ([whole] if len(whole) >= MIN_SECRET else [])}
    if distinctive(secret):
        forms["hex"] = [raw.hex()]
    return forms


def _hex_ci(digits: str) -> str:
    return "".join(f"[{d.lower()}{d.upper()}]" if d.isalpha() else d for d in digits)


@cache
def _named_entities() -> dict[str, list[str]]:
    """Character -> the HTML5 named references that stand for it alone (`/` -> `&sol;`)."""
    out: dict[str, list[str]] = {}
    for name, value in html.entities.html5.items():
        if len(value) == 1:
            out.setdefault(value, []).append(name if name.endswith(";") else name + ";")
    return out


_QUOTES = {'"': "(?:quot|#34|#[xX]22);", "'": "(?:apos|#39|#[xX]27);"}
_SIMPLE_ESCAPES = {"\n": "n", "\r": "r", "\t": "t", "\b": "b", "\f": "f", "/": "/", '"': '"', "\\": "\\",
                   "'": "'"}


# an escape may itself be escaped once more (a JSON string inside a JSON string, an entity in an HTML
# attribute): any number of backslashes, `&amp;` for `&`
_BS = r"\\+"
_AMP = "&(?:amp;)*"


def _escapes(c: str) -> list[tuple[str, str]]:
    """The escaped spellings of one character, each as (its first character, the regex source of the rest)."""
    cp = ord(c)
    utf8 = c.encode("utf-8", errors="surrogatepass")
    # after the first backslash, any more (an escape escaped again); after `&`, any `amp;`
    bs, amp = r"\\*", "(?:amp;)*"
    out = []
    if cp > 0xFFFF:
        high, low = 0xD800 + ((cp - 0x10000) >> 10), 0xDC00 + ((cp - 0x10000) & 0x3FF)
        out.append(("\\", rf"{bs}[uU]{_hex_ci(f'{high:04x}')}{_BS}[uU]{_hex_ci(f'{low:04x}')}"))
        out.append(("\\", rf"{bs}U{_hex_ci(f'{cp:08x}')}"))
    else:
        out.append(("\\", rf"{bs}u{_hex_ci(f'{cp:04x}')}"))
    if cp < 0x100:
        out.append(("\\", rf"{bs}x{_hex_ci(f'{cp:02x}')}"))
    if cp >= 0x80:
        # a bytes repr, b'\xe2\x82\xac'
        out.append(("\\", bs + _BS.join(rf"x{_hex_ci(f'{b:02x}')}" for b in utf8)))
    out.append(("&", rf"{amp}#0*{cp};?"))
    out.append(("&", rf"{amp}#[xX]0*{_hex_ci(f'{cp:x}')};?"))
    out += [("&", amp + re.escape(name)) for name in _named_entities().get(c, [])]
    out.append(("%", "%".join(_hex_ci(f"{b:02x}") for b in utf8)))
    if c in _SIMPLE_ESCAPES:
        out.append(("\\", bs + re.escape(_SIMPLE_ESCAPES[c])))
    if c in _QUOTES:
        # a JSON escape inside an HTML attribute: \&quot;
        out.append(("\\", bs + _AMP + _QUOTES[c]))
    if c == " ":
        out.append(("+", ""))
    return sorted(out, key=lambda e: len(e[1]), reverse=True)


def _sources(c: str) -> list[str]:
    """The escaped spellings of one character as whole regex sources, longest first."""
    return [re.escape(first) + rest for first, rest in _escapes(c)]


@cache
def _char(c: str) -> str:
    """One character of a secret as a regex: itself or any of its escapes."""
    return "(?:" + "|".join([*_sources(c), re.escape(c)]) + ")"


def _lead(c: str, fold: bool) -> tuple[set[str], str]:
    """The first character of a form once the pattern's leading class has consumed its first character:
    (the characters it may start with, the regex source that checks the rest). The pattern starts with a
    class so that the regex engine skips, at C speed, every position no form can start at."""
    spelled = [*_escapes(c), (c, "")]
    firsts = {first for first, _ in spelled} | ({c.lower(), c.upper()} if fold else set())
    return firsts, "(?:" + "|".join(f"(?<={re.escape(first)}){rest}" for first, rest in spelled) + ")"


# how base64 and hex text is escaped where it is escaped at all: `/` in JSON, `+` `/` `=` in a URL; base64url
# spells `+` and `/` as `-` and `_`
_PLAIN_SPELLINGS = {"/": [r"\\+/", "%2[fF]", "_"], "+": ["%2[bB]", "-"], "=": ["%3[dD]"]}


@cache
def _plain_char(c: str) -> str:
    """One character of a base64 or hex form as a regex: itself, or its few realistic spellings."""
    return "(?:" + "|".join([*_PLAIN_SPELLINGS.get(c, []), re.escape(c)]) + ")" if c in _PLAIN_SPELLINGS \
        else re.escape(c)


def _plain_lead(c: str, fold: bool) -> tuple[set[str], str]:
    """`_lead` for a base64 or hex form."""
    spelled = [("\\", r"\\*/") if s == r"\\+/" else (s[0], s[1:]) for s in _PLAIN_SPELLINGS.get(c, [])]
    spelled.append((c, ""))
    firsts = {first for first, _ in spelled} | ({c.lower(), c.upper()} if fold else set())
    return firsts, "(?:" + "|".join(f"(?<={re.escape(first)}){rest}" for first, rest in spelled) + ")"


def form_pattern(text: str) -> str:
    """The regex source of one literal form, each character as itself or escaped. A format character of the
    form's own is taken out of the text searched (see `_strip_format`): here it is optional, and only its
    escapes remain to match."""
    return "".join(f"(?:{'|'.join(_sources(c))})?" if _is_format(c) else _char(c) for c in text)


def _is_format(c: str) -> bool:
    return unicodedata.category(c) == "Cf"


def _without_format(text: str) -> str:
    return "".join(c for c in text if not _is_format(c))


# -- format characters, ignored wherever they are inserted -------------------------------------------------


@cache
def format_characters() -> str:
    """Every Unicode format character (Cf) as a regex character class body, in ranges."""
    return _render(ranges_of("format"))


# -- the Unicode classes, by code point range ----------------------------------------------------------------

# the code points scanned: the planes with characters in use, and the tags and variation selectors of plane 14
_SCANNED = (range(0, 0x30000), range(0xE0000, 0xE1000))


def _is_format_cp(cp: int) -> bool:
    return unicodedata.category(chr(cp)) == "Cf"


def _is_invisible(cp: int) -> bool:
    return unicodedata.category(chr(cp)) in ("Cf", "Mn", "Me")


def _changes_in_nfkc(cp: int) -> bool:
    return unicodedata.normalize("NFKC", chr(cp)) != chr(cp)


# each class the search uses, by the name conformance/unicode_ranges.py keeps its ranges under: format
# characters (Cf); invisible ones (Cf, Mn, Me); those NFKC changes (full-width forms, ligatures, ...)
CLASSES: dict[str, Callable[[int], bool]] = {
    "format": _is_format_cp, "invisible": _is_invisible, "compatibility": _changes_in_nfkc}


def scan(name: str) -> tuple[tuple[int, int], ...]:
    """The code points of class `name` (a key of CLASSES) in `_SCANNED`, as inclusive (first, last) ranges,
    by this interpreter's Unicode database: about 0.04 s per class."""
    ranges: list[list[int]] = []
    test = CLASSES[name]
    for block in _SCANNED:
        for cp in block:
            if test(cp):
                if ranges and ranges[-1][1] == cp - 1:
                    ranges[-1][1] = cp
                else:
                    ranges.append([cp, cp])
    return tuple((a, b) for a, b in ranges)


@cache
def ranges_of(name: str) -> tuple[tuple[int, int], ...]:
    """`scan(name)`, read from conformance/unicode_ranges.py where it was written from the same Unicode
    database as this interpreter's (scripts/unicode_ranges.py), else scanned."""
    from conformance import unicode_ranges

    if unicodedata.unidata_version == unicode_ranges.UNIDATA_VERSION:
        kept: tuple[tuple[int, int], ...] = getattr(unicode_ranges, name.upper())
        return kept
    return scan(name)


def _render(ranges: Iterable[tuple[int, int]], low: int = 0, high: int = 0x10FFFF) -> str:
    """Ranges (clipped to low..high) as a regex character class body."""
    out = []
    for a, b in ranges:
        a, b = max(a, low), min(b, high)
        if a <= b:
            out.append(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}")
    return "".join(out)


# the zero-width and invisible characters a key may be split with, as escapes (their raw forms are all Cf)
_INVISIBLE = (0x00AD, 0x180E, *range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2065),
              *range(0x2066, 0x2070), 0xFEFF)


@cache
def _format_pattern() -> re.Pattern[str]:
    """A format character, raw, escaped, or its UTF-8 read as Latin-1 (as a header value may be decoded);
    it starts with a class, so the engine skips every other position at C speed (see `_lead`)."""
    # not U+00AD's one-byte \xad: it is also the last byte of a character's UTF-8 in a bytes repr (\xc3\xad)
    spelled = {e for cp in _INVISIBLE for e in _escapes(chr(cp)) if e != ("\\", rf"\\*x{_hex_ci('ad')}")}
    for cp in _INVISIBLE:
        latin = chr(cp).encode("utf-8").decode("latin-1")
        spelled.add((latin[0], re.escape(latin[1:])))
    firsts = "".join(sorted({re.escape(first) for first, _ in spelled}))
    rests = "|".join(f"(?<={re.escape(first)}){rest}" for first, rest in sorted(spelled, key=lambda e: -len(e[1])))
    raw = format_characters()
    return re.compile(f"[{raw}{firsts}](?:(?<=[{raw}])|{rests})")


def _strip_format(text: str) -> tuple[str, list[int], list[int]]:
    """`text` without its format characters, and the map back: (stripped, where each removal sits in the
    stripped text, how many characters were removed up to and including it)."""
    at: list[int] = []
    removed: list[int] = []
    parts: list[str] = []
    last = total = 0
    for match in _format_pattern().finditer(text):
        parts.append(text[last:match.start()])
        at.append(match.start() - total)
        total += match.end() - match.start()
        removed.append(total)
        last = match.end()
    parts.append(text[last:])
    return "".join(parts), at, removed


# -- finding and masking --------------------------------------------------------------------------------------

# what may stand right before a secret that stands alone: the end of an escape (JSON's \n, \t, \u0022 ...;
# URL's %20) ends in a letter or digit that belongs to the escape, not to a word the secret is part of
# (checked once the pattern's leading class has consumed the secret's first character: one more back)
_ESCAPE_BEFORE_LEAD = (r"(?:(?<![A-Za-z0-9_][\s\S])|(?<=\\[nrtbf][\s\S])|(?<=\\u[0-9A-Fa-f]{4}[\s\S])"
                       r"|(?<=%[0-9A-Fa-f]{2}[\s\S]))")


_Compiled = tuple[re.Pattern[str] | None, dict[str, tuple[int, str]], tuple[str, ...], re.Pattern[str]]


@lru_cache(maxsize=256)
def _compiled(secrets: tuple[str, ...]) -> _Compiled:
    """(the pattern of every form of every secret, group name -> (secret number, form), the literal forms
    lowered, what starts an escape). A proxy meets the same few keys again and again: built once each."""
    alternatives: list[tuple[int, str]] = []
    groups: dict[str, tuple[int, str]] = {}
    firsts: set[str] = set()
    for number, secret in enumerate(secrets, start=1):
        loud = distinctive(secret)
        for form, texts in literal_forms(secret).items():
            for i, text in enumerate(texts):
                # a format character is optional where it stands (form_pattern): one leading the form can go
                text = text.lstrip("".join(c for c in text if _is_format(c)))
                if not text:
                    continue
                fold = form != "base64" and (loud or form != "itself")
                if form == "itself":
                    lead_firsts, lead = _lead(text[0], fold)
                    source = lead + form_pattern(text[1:])
                else:
                    lead_firsts, lead = _plain_lead(text[0], fold)
                    source = lead + "".join(_plain_char(c) for c in text[1:])
                firsts |= lead_firsts
                if not loud and form == "itself":
                    source = _ESCAPE_BEFORE_LEAD + source + r"(?![A-Za-z0-9_])"
                elif fold:
                    source = f"(?i:{source})"
                group = f"s{number}_{form}_{i}"
                groups[group] = (number, form)
                alternatives.append((len(text), f"(?P<{group}>{source})"))
    # longest first, so a form that contains another is found whole
    alternatives.sort(key=lambda a: -a[0])
    lead_class = "".join(sorted(re.escape(c) for c in firsts))
    pattern = re.compile(f"[{lead_class}](?:" + "|".join(s for _, s in alternatives) + ")") if alternatives else None
    # the fast refusal of `find`: in ASCII text with nothing that starts an escape, an occurrence can only be
    # one of the literal forms as they are (in some case)
    literals = tuple({_without_format(t).lower() for s in secrets for ts in literal_forms(s).values() for t in ts})
    starters = re.compile(r"[\\&%+]" if any(" " in s for s in secrets) else r"[\\&%]")
    return pattern, groups, literals, starters


@dataclass(frozen=True)
class Found:
    """One occurrence: which secret (its 1-based number among those given), in which form, where."""

    number: int
    form: str
    start: int
    end: int


# secrets compiled together: a proxy learning its clients' keys one by one compiles only the last group again
_GROUP = 8


class SecretFinder:
    """Finds the secrets given, in every form (see the module's docstring), in text. Immutable: build a new
    one to add secrets (`with_secrets`); finders of the same secrets share their compiled patterns."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: tuple[str, ...] = tuple(dict.fromkeys(s for s in secrets if s and len(s) >= MIN_SECRET))
        self._parts = [(first, _compiled(self.secrets[first:first + _GROUP]))
                       for first in range(0, len(self.secrets), _GROUP)]

    def with_secrets(self, secrets: Iterable[str]) -> SecretFinder:
        """A finder of these secrets as well."""
        return SecretFinder([*self.secrets, *secrets])

    @property
    def active(self) -> bool:
        return bool(self._parts)

    def _refused(self, text: str) -> bool:
        """Whether `text` surely holds no secret: ASCII with nothing that starts an escape, and no literal form
        (in any case) in it."""
        if not text.isascii() or any(starters.search(text) for _, (_, _, _, starters) in self._parts):
            return False
        lowered = text.lower()
        return not any(literal in lowered for _, (_, _, literals, _) in self._parts for literal in literals)

    def find(self, text: str) -> list[Found]:
        """Every occurrence in `text`, left to right, none overlapping; the spans are in `text` itself, format
        characters inside an occurrence included."""
        if not self._parts or not text:
            return []
        if len(text) <= _MEMO_MAX_CHARS:
            return list(_memo_find(self.secrets, text))
        return list(_long_text(text).find(self.secrets))

    def _find(self, text: str) -> list[Found]:
        spans: list[tuple[int, int, int, str]] = []
        if not self._refused(text):
            stripped, at, removed = _strip_format(text)
            for first, (pattern, groups, _, _) in self._parts:
                for match in pattern.finditer(stripped) if pattern is not None else ():
                    number, form = groups[match.lastgroup or ""]
                    begin, finish = match.start(), match.end()
                    start = begin + (removed[bisect.bisect_right(at, begin) - 1] if at and at[0] <= begin else 0)
                    last = finish - 1
                    end = last + 1 + (removed[bisect.bisect_right(at, last) - 1] if at and at[0] <= last else 0)
                    spans.append((start, end, first + number, form))
        # the forms of the normalised view (see `deep_find`)
        for first in range(0, len(self.secrets), _GROUP):
            spans += [(start, end, first + number, form)
                      for start, end, number, form in deep_find(self.secrets[first:first + _GROUP], text)]
        # overlapping occurrences are masked as one (their union), named by the first and longest
        spans.sort(key=lambda s: (s[0], s[0] - s[1]))
        out: list[Found] = []
        for start, end, number, form in spans:
            if out and start < out[-1].end:
                if end > out[-1].end:
                    out[-1] = Found(out[-1].number, out[-1].form, out[-1].start, end)
                continue
            out.append(Found(number, form, start, end))
        return out

    def search(self, text: str) -> Found | None:
        """The first occurrence, or None."""
        found = self.find(text)
        return found[0] if found else None

    def mask(self, text: str, mask: str = MASK) -> str:
        """`text` with every occurrence replaced by `mask`."""
        found = self.find(text)
        if not found:
            return text
        parts, last = [], 0
        for f in found:
            parts += [text[last:f.start], mask]
            last = f.end
        parts.append(text[last:])
        return "".join(parts)


# A run asks about the same short texts over and over (header names and values, the model, the prompt, the
# report's own words: 96% of the calls of a run repeat an earlier one), and the deep forms make each search
# cost tens of substring scans: short texts are answered from a bounded memo (at most 4096 x 4096 chars).
_MEMO_MAX_CHARS = 4096


@lru_cache(maxsize=4096)
def _memo_find(secrets: tuple[str, ...], text: str) -> tuple[Found, ...]:
    return tuple(_finder(secrets)._find(text))


@lru_cache(maxsize=64)
def _finder(secrets: tuple[str, ...]) -> SecretFinder:
    return SecretFinder(secrets)


def as_text(data: bytes) -> str:
    """Bytes as text for a search, every byte kept (invalid UTF-8 as lone surrogates, back by `as_bytes`)."""
    return data.decode("utf-8", errors="surrogateescape")


def as_bytes(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogateescape")



# -- the deep view: escapes undone layer by layer, fillers deleted, NFKC --------------------------------------
#
# What the patterns above do not spell is found in a second, normalised view of the text (`_view`): every
# escape undone (URL `%XX`, `%uXXXX` and `%25XX` layers, JSON and Python `\uXXXX` `\U0000XXXX` `\xHH` `\n`,
# octal `\163`, CSS `\73 `, HTML entities, quoted-printable `=73` and its soft line breaks); whitespace, line
# breaks, control characters (NUL, ESC), ANSI sequences, HTML tags, CDATA seams and invisible characters (Cf,
# Mn, Me, the variation selectors, U+180B-180F, U+3164, U+2800, U+115F-1160, U+FFA0) deleted; NFKC applied
# (full-width forms); again while a round still changes anything (at most `_ROUNDS`); and last, a run of hex
# bytes with separators (`73:6b:...`, `0x73,0x6b,...`) written as plain hex. An occurrence found in the view
# is mapped back step by step to whole escapes, fillers and hex runs of the original text, never part of one,
# so masked JSON, XML and HTML stay well-formed.
#
# In the view a distinctive secret is looked for in any case, and, of the secret, its upper and lower case and
# its UTF-16 (LE and BE), and the secret's base64 once more: base64 and base64url (line breaks anywhere), base32
# (any case), at every alignment, and hex. Base85, Ascii85 and uuencode (their alphabets hold `%`, `&`, `<`,
# `\`, spaces) are looked for in the text itself. Words and short keys are not looked for in either (see
# `distinctive`). Not found: compressed text (gzip then base64) and encodings of encodings beyond the one layer
# named above.
#
# Cost: each step is one regex substitution at C speed (the escapes and the compatibility characters met call
# back into Python once each), and the forms are found by `str.find` of literal texts; the maps back are built
# only when a form is found. Measured on 1.4 MB of indented report JSON with nested JSON strings: the first pass
# alone 0.7 s, with the view 1.0-1.5 s; on 0.6 MB of HTML 0.01 s and about 0.1 s. The view's character
# classes (invisible, changed by NFKC) are read by code point range from unicode_ranges.py (`ranges_of`);
# a long text's view is kept for its next search (`_LongTexts`).

_ROUNDS = 4

_DECODE_TEMPLATE = (
    r"%25(?=[0-9A-Fa-f]{2}|[uU][0-9A-Fa-f]{4})"
    r"|%[uU](?P<pu>[0-9A-Fa-f]{4})"
    r"|%(?P<pct>[0-9A-Fa-f]{2})"
    r"|\\+(?:u\{(?P<ubrace>[0-9A-Fa-f]{1,6})\}|[uU](?P<u4>[0-9A-Fa-f]{4})(?![0-9A-Fa-f]{4})"
    r"|U(?P<u8>[0-9A-Fa-f]{8})|[xX](?P<x>[0-9A-Fa-f]{2}){css}|(?P<oct>[0-7]{1,3})"
    r"|(?P<simple>[nrtbf])|(?P<same>[/&%]))"
    r"|&(?:amp;)*(?:#(?P<dec>[0-9]{1,7});?|#[xX](?P<hex>[0-9A-Fa-f]{1,6});?|(?P<name>[A-Za-z][A-Za-z0-9]{1,31});)"
    r"|=(?P<qp>[0-9A-F]{2})"
    r"|=\r?\n|=(?:\\+r)?\\+n|=(?:&(?:amp;)*#(?:1[03]|[xX]0*[aAdD]);)+"
)
_DECODE = re.compile(_DECODE_TEMPLATE.replace("{css}", r"|(?P<css>[0-9A-Fa-f]{1,6}) "))
# `\113 ` is CSS's U+0113 and also octal's K before a space: where a text has such an escape, a second view
# reads every escape of 1 to 3 octal digits as octal (a key C-escaped inside a sentence: `'\163\153...\113 is`)
_DECODE_OCTAL = re.compile(_DECODE_TEMPLATE.replace("{css}", ""))
_OCTAL_BEFORE_SPACE = re.compile(r"\\[0-7]{1,3} ")
_SIMPLE = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}
_HEX_GROUPS = ("pu", "pct", "ubrace", "u4", "u8", "x", "css", "hex", "qp")


def _decoded(match: re.Match[str]) -> str | None:
    """What one escape stands for, or None to keep it as it is."""
    group = match.lastgroup
    if group is None:
        return "%" if match.group(0).startswith("%25") else ""
    value = match.group(group)
    if group in _HEX_GROUPS or group in ("oct", "dec"):
        cp = int(value, 8 if group == "oct" else 10 if group == "dec" else 16)
        return chr(cp) if cp <= 0x10FFFF else None
    if group == "simple":
        return _SIMPLE[value]
    if group == "same":
        return value
    return html.entities.html5.get(value + ";")


_EXTRA_FILLERS = "\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u2800\u3164\ufe00-\ufe0f\uffa0"


# the basic plane (past ASCII) and the others: a character class of the basic plane alone is a table, one with
# ranges beyond it a list the regex engine walks for each character
_PLANES = ((0x80, 0xFFFF), (0x10000, 0x10FFFF))


def _by_plane(name: str) -> tuple[str, str]:
    return tuple(_render(ranges_of(name), low, high) for low, high in _PLANES)  # type: ignore[return-value]


@cache
def _invisible_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Whitespace, control and invisible characters (Cf, Mn, Me and the fillers that look like nothing): of
    the basic plane, of the others."""
    basic, other = _by_plane("invisible")
    return (re.compile(rf"[\s\x00-\x1f\x7f{basic}{_EXTRA_FILLERS}]+"),
            re.compile(rf"[{other}\U000e0100-\U000e01ef]+"))


# markup that may split a key: tags without attributes (an attribute's value may hold the key: it stays),
# comments, CDATA seams, ANSI sequences
_MARKUP = re.compile(r"</?[A-Za-z][A-Za-z0-9]{0,15}\s*/?>|<!--[^<>]{0,200}-->|<!\[CDATA\[|\]\]>"
                     r"|\x1b\[[0-9;?]*[A-Za-z]")


@cache
def _compatibility_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The characters NFKC changes (full-width forms, ligatures, ...): of the basic plane, of the others."""
    basic, other = _by_plane("compatibility")
    return re.compile(f"[{basic}]"), re.compile(f"[{other}]")


def _nfkc(match: re.Match[str]) -> str:
    return unicodedata.normalize("NFKC", match.group(0))


# a character's UTF-8 bytes, each undone from its own escape (`%D0%BA`, `\\320\\272`, `=D0=BA`) or read as
# Latin-1: the character
_UTF8_AS_LATIN1 = re.compile(r"[\xc2-\xf4][\x80-\xbf]{1,3}")


def _utf8(match: re.Match[str]) -> str:
    try:
        return match.group(0).encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        return match.group(0)


def _decode(match: re.Match[str]) -> str:
    replacement = _decoded(match)
    return match.group(0) if replacement is None else replacement


_HEX_RUN = re.compile(r"(?:0[xX])?[0-9A-Fa-f]{2}(?:(?:[:,;]|,?0[xX])[0-9A-Fa-f]{2}){7,}")


def _hex_compact(match: re.Match[str]) -> str:
    return re.sub(r"0[xX]|[:,;]", "", match.group(0))


# a step of the view: (its pattern, what a match becomes: a text, or a function of the match)
_Step = tuple[re.Pattern[str], "str | Callable[[re.Match[str]], str]"]


def _view(text: str, decode: re.Pattern[str] = _DECODE) -> tuple[str, list[tuple[str, _Step]]]:
    """The normalised view of `text` (see above) and its steps: (the text each step was applied to, the step);
    `decode` reads the escapes (`_DECODE`, or `_DECODE_OCTAL` for the octal reading)."""
    levels: list[tuple[str, _Step]] = []

    def apply(step: _Step) -> bool:
        nonlocal text
        new = step[0].sub(step[1], text)
        if new == text:
            return False
        levels.append((text, step))
        text = new
        return True

    basic_invisible, other_invisible = _invisible_patterns()
    basic_compatible, other_compatible = _compatibility_patterns()
    for _ in range(_ROUNDS):
        # a step may bring together what an earlier one would have undone (`\` and `n` once the filler between
        # them is gone): again, while a round changes anything
        changed = apply((decode, _decode))
        # before whitespace goes: a UTF-8 byte read as Latin-1 may be NBSP or a soft hyphen
        if not text.isascii():
            changed = apply((_UTF8_AS_LATIN1, _utf8)) or changed
        changed = apply((_MARKUP, "")) or changed
        changed = apply((basic_invisible, "")) or changed
        if not text.isascii():
            astral = max(text) > "\uffff"
            if astral:
                changed = apply((other_invisible, "")) or changed
            changed = apply((basic_compatible, _nfkc)) or changed
            if astral:
                changed = apply((other_compatible, _nfkc)) or changed
        if not changed:
            break
    apply((_HEX_RUN, _hex_compact))
    return text, levels


class _Map:
    """The map of one step of the view back to the text before it: pieces of the new text, each the same
    characters as before (`same`) or standing for a whole span of the old text. Built only when a form is
    found."""

    def __init__(self, text: str, step: _Step) -> None:
        self.new: list[int] = []
        self.old: list[int] = []
        self.old_end: list[int] = []
        self.same: list[bool] = []
        pattern, replace = step
        new = last = 0
        for match in pattern.finditer(text):
            replacement = replace if isinstance(replace, str) else replace(match)
            if replacement == match.group(0):
                continue
            begin, finish = match.span()
            if begin > last:
                self._piece(new, last, begin, True)
                new += begin - last
            self._piece(new, begin, finish, False)
            new += len(replacement)
            last = finish
        self._piece(new, last, len(text), True)

    def _piece(self, new: int, old: int, old_end: int, same: bool) -> None:
        self.new.append(new)
        self.old.append(old)
        self.old_end.append(old_end)
        self.same.append(same)

    def start(self, p: int) -> int:
        """The start, in the old text, of the new text's character at `p`."""
        i = bisect.bisect_right(self.new, p) - 1
        return self.old[i] + (p - self.new[i]) if self.same[i] else self.old[i]

    def end(self, p: int) -> int:
        """The end, in the old text, of the new text's character at `p`."""
        i = bisect.bisect_right(self.new, p) - 1
        return self.old[i] + (p - self.new[i]) + 1 if self.same[i] else self.old_end[i]


def _normalised(secret: str) -> list[str]:
    """The secret as the view shows it: with its own escape-like parts undone, and (for a key holding `\\`,
    `%` or `&`, whose parts the view meets undone only after a filler between them is deleted) as it is."""
    as_is = secret
    for pattern in (_MARKUP, _invisible_patterns()[0], _invisible_patterns()[1]):
        as_is = pattern.sub("", as_is)
    as_is = unicodedata.normalize("NFKC", as_is)
    return list(dict.fromkeys([_view(secret)[0], as_is]))


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _bit_cores(raw: bytes, bits: int, period: int, encode: Callable[[bytes], bytes]) -> list[str]:
    """The characters of `raw`'s encoding (`bits` per character; the alignment repeats every `period` bytes)
    that depend only on `raw`'s own bytes, at every alignment inside a longer buffer."""
    out = []
    for shift in range(period):
        encoded = encode(b"\0" * shift + raw).decode("ascii")
        first = -(-shift * 8 // bits)
        last = (shift + len(raw)) * 8 // bits
        core = encoded[first:last].rstrip("=")
        if len(core) >= _MIN_CORE:
            out.append(core)
    return list(dict.fromkeys(out))


def _block_cores(raw: bytes, encode: Callable[[bytes], bytes]) -> list[str]:
    """`_bit_cores` for base85 and Ascii85: 5 characters for each 4 bytes."""
    out = []
    for shift in range(4):
        encoded = encode(b"\1" * shift + raw).decode("ascii")
        first, last = -(-shift // 4), (shift + len(raw)) // 4
        core = encoded[first * 5:last * 5]
        if len(core) >= 10:
            out.append(core)
    return list(dict.fromkeys(out))


def _a85(raw: bytes) -> bytes:
    return base64.a85encode(raw)


def _uu(raw: bytes) -> bytes:
    """uuencode's characters of `raw`, without the line's length character and line break."""
    return binascii.b2a_uu(raw)[1:-1]


def _spelled(texts: list[str]) -> list[str]:
    """Texts looked for in the text itself, as they are and as JSON and HTML escape them."""
    return list(dict.fromkeys(spelled for t in texts for spelled in (t, json.dumps(t)[1:-1], html.escape(t),
                                                                       html.escape(t, quote=False))))


def deep_forms(secret: str) -> dict[str, list[str]]:
    """Form name -> the texts looked for in the view (`itself`, `base64`, `base32`, `hex`) and in the text
    itself (`base85`, `uuencode`), for a distinctive secret; empty for any other."""
    if not distinctive(secret):
        return {}
    variants = list(dict.fromkeys([secret, secret.upper(), secret.lower()]))
    # the view folds ASCII case only: a non-ASCII key's other cases are looked for as they are
    itself = list(dict.fromkeys(text for v in variants for text in _normalised(v)))
    raws = [v.encode("utf-8", errors="surrogatepass") for v in variants]
    raws += [v.encode("utf-16-le", errors="surrogatepass") for v in variants]
    raws += [v.encode("utf-16-be", errors="surrogatepass") for v in variants]
    # one layer more: the key's base64, encoded again as base64 or hex
    raws.append(base64.b64encode(raws[0]))
    b64 = [c for r in raws for c in _bit_cores(r, 6, 3, base64.b64encode)]
    return {
        "itself": [text for text in itself if len(text) >= _MIN_CORE],
        "base64": list(dict.fromkeys([*b64, *(c.replace("+", "-").replace("/", "_") for c in b64)])),
        "base32": list(dict.fromkeys(c for r in raws for c in _bit_cores(r, 5, 5, base64.b32encode))),
        "hex": list(dict.fromkeys(r.hex() for r in raws)),
        "base85": _spelled([c for f in (base64.b85encode, _a85) for c in _block_cores(raws[0], f)]),
        "uuencode": _spelled([c for core in (_bit_cores(raws[0], 6, 3, _uu) if len(raws[0]) <= 40 else [])
                              for c in (core, core.replace(" ", "`"))]),
    }


# the forms compared in any (ASCII) case
_FOLDED = frozenset({"itself", "base32", "hex"})
# the forms looked for in the text itself, not the view
_IN_TEXT = frozenset({"base85", "uuencode"})
# (literal text, folded, in the view, secret number, form)
_Literal = tuple[str, bool, bool, int, str]


@lru_cache(maxsize=256)
def _literals(secrets: tuple[str, ...]) -> tuple[_Literal, ...]:
    out = []
    for number, secret in enumerate(secrets, start=1):
        for form, texts in deep_forms(secret).items():
            folded = form in _FOLDED
            out += [(t.translate(_ASCII_LOWER) if folded else t, folded, form not in _IN_TEXT, number, form)
                    for t in texts]
    # longest first, so a form that contains another is named whole
    return tuple(sorted(out, key=lambda lit: -len(lit[0])))


def _occurrences(haystack: str, needle: str) -> Iterable[int]:
    at = haystack.find(needle)
    while at >= 0:
        yield at
        at = haystack.find(needle, at + 1)


# The last long texts searched, each with its view and what was found in it per set of secrets: a run searches
# each answer's body once per secret (AUTH-007) and again for every report it goes into (a 2 MB body: 33
# times in a smoke run), and the view (a dozen passes over the text: about 20 ms a megabyte) does not depend on
# the secret. Short texts need none of this: their searches are memoised whole (`_memo_find`). Bounded by the
# characters kept (the texts, their views and the steps between), not by entries.
_LONG_MAX_CHARS = 24 * 1024 * 1024


class _LongText:
    """A long text's view (computed on first use) and its finds, by secrets."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.viewed: tuple[str, str, list[tuple[str, _Step]]] | None = None
        self.found: dict[tuple[str, ...], tuple[Found, ...]] = {}
        self.lock = threading.Lock()
        self.size = len(text)

    def view(self) -> tuple[str, str, list[tuple[str, _Step]]]:
        with self.lock:
            if self.viewed is None:
                self.viewed = _lowered_view(self.text)
                view, _, levels = self.viewed
                _LONG.grown(self, 2 * len(view) + sum(len(before) for before, _ in levels))
            return self.viewed

    def find(self, secrets: tuple[str, ...]) -> tuple[Found, ...]:
        found = self.found.get(secrets)
        if found is None:
            found = self.found[secrets] = tuple(_finder(secrets)._find(self.text))
        return found


class _LongTexts:
    """The store of `_LongText`s, least recently used first out; `chars` counts what the entries keep."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.texts: OrderedDict[str, _LongText] = OrderedDict()
        self.chars = 0
        self.lock = threading.Lock()

    def get(self, text: str) -> _LongText:
        with self.lock:
            entry = self.texts.get(text)
            if entry is None:
                entry = self.texts[text] = _LongText(text)
                self.chars += entry.size
                self._trim(entry)
            else:
                self.texts.move_to_end(text)
            return entry

    def grown(self, entry: _LongText, by: int) -> None:
        """An entry's view was made: it keeps `by` more characters."""
        with self.lock:
            entry.size += by
            if self.texts.get(entry.text) is entry:
                self.chars += by
                self._trim(entry)

    def _trim(self, entry: _LongText) -> None:
        # the oldest go until the store fits; an entry too big to keep is used once and not kept
        if entry.size > self.max_chars // 2 and self.texts.get(entry.text) is entry:
            del self.texts[entry.text]
            self.chars -= entry.size
        while self.chars > self.max_chars and self.texts:
            _, old = self.texts.popitem(last=False)
            self.chars -= old.size


_LONG = _LongTexts(_LONG_MAX_CHARS)


def _long_text(text: str) -> _LongText:
    return _LONG.get(text)


def _lowered_view(text: str, decode: re.Pattern[str] = _DECODE) -> tuple[str, str, list[tuple[str, _Step]]]:
    """`_view(text, decode)` with the view lowered (ASCII): (view, lowered view, steps)."""
    view, levels = _view(text, decode)
    return view, view.translate(_ASCII_LOWER), levels


def deep_find(secrets: tuple[str, ...], text: str) -> list[tuple[int, int, int, str]]:
    """The occurrences of the secrets' deep forms in `text`: (start, end, secret number, form), spans in
    `text` itself."""
    literals = _literals(secrets)
    if not literals:
        return []
    out: list[tuple[int, int, int, str]] = []
    lowered_text = None
    for literal, folded, viewed, number, form in literals:
        if not viewed:
            if folded and lowered_text is None:
                lowered_text = text.translate(_ASCII_LOWER)
            haystack = lowered_text if folded and lowered_text is not None else text
            out += [(at, at + len(literal), number, form) for at in _occurrences(haystack, literal)]
    out += _found_in_view(literals, _lowered_view(text) if len(text) <= _MEMO_MAX_CHARS else _long_text(text).view())
    if _OCTAL_BEFORE_SPACE.search(text):
        out += _found_in_view(literals, _lowered_view(text, _DECODE_OCTAL))
    return out


def _found_in_view(literals: tuple[_Literal, ...],
                   viewed: tuple[str, str, list[tuple[str, _Step]]]) -> list[tuple[int, int, int, str]]:
    """The viewed literals' occurrences in a view (view, lowered view, steps), as spans of the text it was made
    from."""
    view, lowered_view, levels = viewed
    in_view = [(at, at + len(literal), number, form) for literal, folded, seen_in_view, number, form in literals
               if seen_in_view for at in _occurrences(lowered_view if folded else view, literal)]
    if not in_view:
        return []
    maps = [_Map(before, step) for before, step in levels]
    out = []
    for start, end, number, form in in_view:
        for mapping in reversed(maps):
            start, end = mapping.start(start), mapping.end(end - 1)
        out.append((start, end, number, form))
    return out
