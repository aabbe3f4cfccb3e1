"""What a secret is, in one place (conformance.secret_forms): every form of a key is found and masked, the
text around it is left whole, the documents stay well-formed, and AUTH-007 finds the same forms in an answer.

The forms are written here by hand and looked for afterwards by `report_fixtures.secret_forms_found`, which
undoes escapes instead of matching patterns: two independent ways of saying "the key is in there".
"""

from __future__ import annotations

import base64
import html
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest
from cli_runs import run_either
from report_fixtures import CANARY, deep_echoed_forms, echoed_forms, secret_forms_found

from conformance.checks import transport
from conformance.config import Config
from conformance.contract.profiles import get_profile
from conformance.redact import MASK, Scrubber
from conformance.report.evidence import exchange_evidence
from conformance.secret_forms import (
    SECRET_HEADERS,
    SecretFinder,
    bare,
    base64_cores,
    distinctive,
    is_secret_name,
    literal_forms,
    url_passwords,
    weak_secret_warning,
)
from conformance.transport.exchange import Exchange, RequestSpec, Response

# a key holding CR/LF cannot be sent (20a refuses it before the run); what an attempt writes must still be
# masked: httpx's error repeats the header value as a bytes repr
CRLF_KEY = "sk-CRLF-4d3c2b1a0\r\nf9e8d7c6b5a4"


def _hand_written(key: str) -> dict[str, str]:
    raw = key.encode()
    return {
        **echoed_forms(key),
        "itself": key,
        "url-path": quote(key),
        "json-u-escapes": "".join(f"\\u{ord(c):04x}" for c in key),
        "json-U-escapes-upper": "".join(f"\\u{ord(c):04X}" for c in key),
        "json-mixed": "".join(f"\\u{ord(c):04x}" if i % 2 else c for i, c in enumerate(key)),
        "json-slash": key.replace("/", "\\/"),
        "json-in-json": json.dumps(json.dumps(key)).replace(key, "".join(f"\\u{ord(c):04x}" for c in key)),
        "html-in-attribute": html.escape("".join(f"&#{ord(c)};" for c in key)),
        "entities-without-semicolons": "".join(f"&#{ord(c)}" for c in key) + " ",
        "python-repr-x": "".join(f"\\x{ord(c):02x}" for c in key),
        "b64url": base64.urlsafe_b64encode(raw).decode(),
        "b64-no-padding": base64.b64encode(raw).decode().rstrip("="),
        "zero-width-escaped": key[:5] + "\\u200b" + key[5:12] + "&#8203;" + key[12:] + "%E2%80%8B",
        "zero-width-joiner-every-char": "\u200d".join(key),
        "bom-and-mongolian-separator": "\ufeff" + key[:9] + "\u180e" + key[9:],
        "case-and-entities": "".join(f"&#x{ord(c):x};" if i % 3 == 0 else c.swapcase() for i, c in enumerate(key)),
    }


FORMS = _hand_written(CANARY)


@pytest.mark.parametrize("form", sorted(FORMS))
def test_every_form_of_a_key_is_found_and_masked_and_the_text_around_it_kept(form: str) -> None:
    text = f"before <{FORMS[form]}> after"
    # the independent finder sees the key in it: the form is a real one
    assert secret_forms_found(text.encode(), CANARY), form
    scrubber = Scrubber([CANARY])
    masked = scrubber.text(text)
    assert scrubber.contains_secret(text)
    assert masked.startswith("before <") and masked.endswith("> after") and MASK in masked
    assert secret_forms_found(masked.encode(), CANARY) == [], masked
    assert not scrubber.contains_secret(masked)
    assert scrubber.data(text.encode()) == masked.encode()


def test_a_key_split_by_format_characters_is_masked_with_them() -> None:
    text = f"x {CANARY[:7]}\u200b{CANARY[7:]} y"
    assert Scrubber([CANARY]).text(text) == f"x {MASK} y"
    found = SecretFinder([CANARY]).find(text)
    assert [(f.start, f.end) for f in found] == [(2, 2 + len(CANARY) + 1)]


def test_a_key_that_holds_a_format_character_is_found_with_or_without_it() -> None:
    key = "sk-soft\u00adhyphen-0123456789"
    scrubber = Scrubber([key])
    for text in (key, key.replace("\u00ad", ""), key.replace("\u00ad", "\\u00ad"), repr(key.encode("latin-1"))):
        assert scrubber.text(f"[{text}]") in (f"[{MASK}]", f"[b'{MASK}']"), text


def test_a_bytes_repr_of_a_non_ascii_key_is_found() -> None:
    key = "sk-caf\u00e9-\u00ed-0123456789"
    assert Scrubber([key]).text(repr(key.encode())) == f"b'{MASK}'"


def test_the_latin1_reading_of_a_zero_width_space_is_ignored_too() -> None:
    # a header value's UTF-8 bytes read as Latin-1 turn U+200B into three characters
    split = CANARY[:9] + "\u200b".encode().decode("latin-1") + CANARY[9:]
    assert Scrubber([CANARY]).text(f"[{split}]") == f"[{MASK}]"


@pytest.mark.parametrize("written", [
    repr(CRLF_KEY), repr(CRLF_KEY.encode()), json.dumps(CRLF_KEY), json.dumps(repr(CRLF_KEY.encode())),
    html.escape(json.dumps(f"Illegal header value {CRLF_KEY.encode()!r}")), CRLF_KEY,
    CRLF_KEY.replace("\r\n", "&#13;&#10;"),
])
def test_a_key_holding_cr_lf_is_masked_in_every_spelling_of_its_line_break(written: str) -> None:
    masked = Scrubber([CRLF_KEY]).text(f"error: {written}.")
    assert "f9e8d7c6b5a4" not in masked and "4d3c2b1a0" not in masked, masked


def test_the_evidence_of_a_key_that_could_not_be_sent_holds_no_form_of_it() -> None:
    config = Config(base_url="http://127.0.0.1:9", api_key=CRLF_KEY)
    spec = RequestSpec("basic", "POST", {"x-api-key": CRLF_KEY, "x-selected-account-id": "acct"}, b"{}")
    error = f"LocalProtocolError: Illegal header value {CRLF_KEY.encode()!r}"
    exchange = Exchange("basic", "http://127.0.0.1:9/v4/chat/completions", spec, None, error, "protocol")
    evidence = exchange_evidence(exchange, Scrubber([CRLF_KEY]), get_profile("sgp"), config)
    written = json.dumps(evidence)
    for text in (written, html.escape(written)):
        assert "f9e8d7c6b5a4" not in text and "4d3c2b1a0" not in text
    assert "Illegal header value b'***'" in evidence["error"]


def test_ordinary_text_is_left_alone() -> None:
    finder = SecretFinder([CANARY])
    ordinary = ("a URL http://x/y?z=1&amp;q=%20, JSON \\u00e9\\n, hex deadbeefcafebabe0123456789, "
                "base64 " + base64.b64encode(b"sk-CANARY-but-another-key").decode() + ", "
                + CANARY[:-1] + "X")
    assert finder.find(ordinary) == []
    assert Scrubber([CANARY]).text(ordinary) == ordinary


def test_a_word_key_is_masked_only_as_itself_and_alone() -> None:
    scrubber = Scrubber(["test"])
    assert not distinctive("test")
    # not in another case, not as hex, not inside a word: a report's own text is not a key
    assert scrubber.text("TEST pytest 74657374 test") == f"TEST pytest 74657374 {MASK}"
    assert "hex" not in literal_forms("test")


def test_base64_cores_cover_every_alignment_in_a_longer_text() -> None:
    raw = CANARY.encode()
    cores = base64_cores(raw)
    for prefix in (b"", b"u", b"us", b"use", b"user:"):
        for suffix in (b"", b"!", b"!!"):
            encoded = base64.b64encode(prefix + raw + suffix).decode()
            assert any(core in encoded for core in cores), (prefix, suffix)


def test_what_a_secret_header_is_and_a_credentials_bare_value() -> None:
    for name in (*SECRET_HEADERS, "X-Gateway-Token", "X-Client-Secret", "my-password", "X-Auth-User"):
        assert is_secret_name(name)
    assert not is_secret_name("x-tenant-id") and is_secret_name("x-tenant-id", ["X-Tenant-Id"])
    assert bare("Bearer  sk-1 ") == "sk-1" and bare("Basic dXNlcg==") == "dXNlcg==" and bare(" sk-2") == "sk-2"
    assert url_passwords("http://u:p%40ss@proxy:3128") == ["p%40ss", "p@ss"]
    assert url_passwords("u:pw@proxy:3128") == ["pw"] and url_passwords("http://[::1") == []


# -- the documents stay well-formed ----------------------------------------------------------------------------


def _document() -> dict[str, object]:
    return {"forms": FORMS, "quote\"d": f'"{CANARY}"', CANARY: "as a key", "n": 1, "list": [CANARY.upper()]}


def test_masked_json_stays_json() -> None:
    scrubber = Scrubber([CANARY])
    for written in (json.dumps(_document()), json.dumps(_document(), ensure_ascii=False, indent=2)):
        masked = scrubber.text(written)
        doc = json.loads(masked)
        assert secret_forms_found(masked.encode(), CANARY) == [] and doc["n"] == 1
    value = scrubber.value(_document())
    assert secret_forms_found(json.dumps(value).encode(), CANARY) == []


def test_masked_xml_and_html_stay_well_formed() -> None:
    scrubber = Scrubber([CANARY])
    root = ET.Element("testsuites")
    for name, form in FORMS.items():
        case = ET.SubElement(root, "testcase", name=name)
        ET.SubElement(case, "failure", message=form).text = f"echoed: {form}"
    masked = scrubber.data(ET.tostring(root, encoding="utf-8"))
    assert len(ET.fromstring(masked).findall("testcase")) == len(FORMS)
    assert secret_forms_found(masked, CANARY) == []

    class Strict(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.open: list[str] = []
            self.text: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.open.append(tag)
            self.text += [v or "" for _, v in attrs]

        def handle_endtag(self, tag: str) -> None:
            assert self.open.pop() == tag

        def handle_data(self, data: str) -> None:
            self.text.append(data)

    blob = html.escape(json.dumps(_document()))
    page = "<html><body>" + "".join(f"<p title=\"{html.escape(f)}\">{html.escape(f)}</p>" for f in FORMS.values())
    page += f'<div data-jsonblob="{blob}"></div></body></html>'
    parser = Strict()
    parser.feed(scrubber.text(page))
    parser.close()
    assert parser.open == []
    assert secret_forms_found("\n".join(parser.text).encode(), CANARY) == []
    # the blob still reads as the JSON it was
    assert json.loads(parser.text[-1])["n"] == 1


# -- AUTH-007 finds the same forms in an answer -----------------------------------------------------------------


def _answer(body: bytes, headers: list[tuple[str, str]]) -> Exchange:
    spec = RequestSpec("basic", "POST", {"x-api-key": CANARY}, b"{}")
    return Exchange("basic", "http://t/v4/chat/completions", spec, Response(200, headers, body, 1.0))


@pytest.mark.parametrize("form", sorted(FORMS))
def test_auth_007_finds_every_form_in_a_body_and_a_header(form: str) -> None:
    body = json.dumps({"detail": FORMS[form]}).encode()
    found = transport.key_not_echoed(_answer(body, [("content-type", "application/json")]), [CANARY])
    assert [v.requirement for v in found] == ["AUTH-007"] and "body" in found[0].message
    found = transport.key_not_echoed(_answer(b"{}", [("x-debug", FORMS[form])]), [CANARY])
    assert [v.requirement for v in found] == ["AUTH-007"] and "'x-debug'" in found[0].message
    assert all(CANARY not in v.message and secret_forms_found(v.message.encode(), CANARY) == [] for v in found)


def test_auth_007_names_the_form_and_passes_an_answer_without_the_key() -> None:
    verbatim = transport.key_not_echoed(_answer(f'{{"k": "{CANARY}"}}'.encode(), []), [CANARY])
    upper = transport.key_not_echoed(_answer(f'{{"k": "{CANARY.upper()}"}}'.encode(), []), [CANARY])
    hexed = transport.key_not_echoed(_answer(f'{{"k": "{CANARY.encode().hex()}"}}'.encode(), []), [CANARY])
    assert "(verbatim)" in verbatim[0].message and "(case-changed, escaped or split)" in upper[0].message
    assert "(hex)" in hexed[0].message
    # a near miss is no echo
    assert transport.key_not_echoed(_answer(json.dumps({"k": CANARY[:-2]}).encode(), []), [CANARY]) == []


def test_many_keys_learnt_one_by_one_are_each_found_under_their_own_number() -> None:
    keys = [f"sk-many-{i:03d}-5f1e9d3c7b2a4680" for i in range(20)]
    finder = SecretFinder()
    for key in keys:
        finder = finder.with_secrets([key])
    text = f"{keys[17].upper()} and {keys[2]} and {keys[9].encode().hex()}"
    assert [(f.number, f.form) for f in finder.find(text)] == [(18, "itself"), (3, "itself"), (10, "hex")]
    assert Scrubber(keys).text(text) == f"{MASK} and {MASK} and {MASK}"


# -- the deep view: forms the attacker of issue 20 still got through (line breaks in base64, the encoded forms
# of case variants, layered and other escapes, hex with separators, other encodings, invisible fillers, NFKC)


DEEP = deep_echoed_forms(CANARY)


def _in_view_of_the_reference(masked: str) -> bool:
    """The independent finder, after taking out the line breaks and fillers the reference finder does not know."""
    flat = re.sub(r"\\r|\\n|[\s\x00]", "", masked)
    return bool(secret_forms_found(masked.encode(), CANARY) or secret_forms_found(flat.encode(), CANARY))


@pytest.mark.parametrize("form", sorted(DEEP))
def test_every_deep_form_is_masked_and_the_text_around_it_kept(form: str) -> None:
    text = f"before <{DEEP[form]}> after"
    scrubber = Scrubber([CANARY])
    assert scrubber.contains_secret(text), form
    masked = scrubber.text(text)
    assert masked.startswith("before <") and masked.endswith("> after") and MASK in masked, masked
    assert not scrubber.contains_secret(masked), masked
    assert not _in_view_of_the_reference(masked), masked
    assert scrubber.data(text.encode()) == masked.encode()


@pytest.mark.parametrize("form", sorted(DEEP))
def test_a_deep_form_masked_in_json_xml_and_html_leaves_them_well_formed(form: str) -> None:
    scrubber = Scrubber([CANARY])
    written = json.dumps({"detail": DEEP[form], "n": 1, "after": "kept"})
    doc = json.loads(scrubber.text(written))
    assert doc["n"] == 1 and doc["after"] == "kept" and MASK in doc["detail"]
    root = ET.Element("testcase", name="x")
    ET.SubElement(root, "failure", message=DEEP[form].replace("\x00", "")).text = DEEP[form].replace("\x00", "")
    masked = scrubber.data(ET.tostring(root, encoding="utf-8"))
    failure = ET.fromstring(masked).find("failure")
    assert failure is not None and MASK in (failure.text or "") and MASK in failure.get("message", "")
    page = f"<html><body><p title=\"{html.escape(DEEP[form])}\">{html.escape(DEEP[form])}</p></body></html>"
    masked_page = scrubber.text(page)
    assert masked_page.startswith("<html><body><p title=\"") and masked_page.endswith("</p></body></html>")
    assert masked_page.count("<p") == 1 and masked_page.count("</p>") == 1 and MASK in masked_page


def test_auth_007_finds_a_deep_form_and_names_its_encoding() -> None:
    split = "case-changed, escaped or split"
    for form, expected in (("b64-mime-3", "base64"), ("base32", "base32"), ("hex-colons", "hex"),
                           ("fullwidth", split), ("url-twice", split)):
        found = transport.key_not_echoed(_answer(json.dumps({"detail": DEEP[form]}).encode(), []), [CANARY])
        assert [v.requirement for v in found] == ["AUTH-007"], form
        assert f"({expected})" in found[0].message, (form, found[0].message)


# ordinary text the view must leave alone: near misses of the key in the new forms, and everyday text that holds
# the escapes, separators, fillers and encodings the view undoes
NEAR_MISS = CANARY[:-1] + "X"


def _ordinary() -> dict[str, str]:
    near = deep_echoed_forms(NEAR_MISS)
    other = bytes(range(256)) * 2
    return {
        **{f"near-miss-{name}": near[name] for name in ("b64-pem-64", "url-of-upper", "hex-of-upper",
                                                       "url-twice", "hex-colons", "quoted-printable",
                                                       "fullwidth", "split-cgj", "split-html-tags")},
        "mime-base64-of-other-bytes": base64.encodebytes(other).decode(),
        "sha256-fingerprint": ":".join(f"{b:02X}" for b in bytes.fromhex("ab" * 32)),
        "c-array": ", ".join(f"0x{b:02x}" for b in other[:64]),
        "fullwidth-japanese": "ｈｅｌｌｏ　ｗｏｒｌｄ、こんにちは世界",
        "emoji-and-accents": "I \u2764\ufe0f caf\u0065\u0301 \U0001f44d\U0001f3fd",
        "hangul": "\ud55c\uad6d\uc5b4 \u3164 \u2800",
        "ansi-log": "\x1b[31mERROR\x1b[0m request failed: \x1b[1mtimeout\x1b[0m",
        "html": "<p class=\"x\">a <b>bold</b> <![CDATA[raw]]> <!-- note --></p>",
        "escapes": "caf=C3=A9 %25 %u00e9 \\101\\102 \\201C content \\U0001F600 &amp;&lt; \\n\\t",
        "json": json.dumps({"choices": [{"message": {"content": "Hello, world! \u00e9\u4e2d"}}], "usage": 12}),
    }


ORDINARY = _ordinary()


@pytest.mark.parametrize("name", sorted(ORDINARY))
def test_ordinary_text_with_escapes_fillers_and_encodings_is_left_alone(name: str) -> None:
    text = ORDINARY[name]
    assert SecretFinder([CANARY]).find(text) == [], name
    assert Scrubber([CANARY]).text(text) == text


def test_a_weak_key_gets_a_warning_without_the_key() -> None:
    assert weak_secret_warning(CANARY) is None and weak_secret_warning("") is None
    for key in ("abc", "test", "conformance", "secretsecret", "abc12"):
        warning = weak_secret_warning(key)
        assert warning is not None and key not in warning and "\n" not in warning
    assert "not masked" in (weak_secret_warning("abc") or "")
    assert "only as itself" in (weak_secret_warning("secretsecret") or "")
    # and its deep forms are not looked for: a word stays ordinary text
    assert Scrubber(["secretsecret"]).text("SECRETSECRET 73:65:63") == "SECRETSECRET 73:65:63"


def test_a_non_ascii_keys_byte_escapes_and_other_case_are_masked() -> None:
    key = "ключ-секрет-1234567890"
    raw, upper = key.encode(), key.upper().encode()
    scrubber = Scrubber([key])
    for written in ("".join(f"%{b:02X}" for b in upper), "".join(f"%25{b:02X}" for b in raw),
                    "".join(f"\\{b:o}" for b in raw), "".join(f"={b:02X}" for b in raw),
                    json.dumps(key.upper())[1:-1], "\u034f".join(key.upper())):
        assert scrubber.text(f"[{written}]") == f"[{MASK}]", written
    assert scrubber.text("[ключ-секрет-1234567899]") == "[ключ-секрет-1234567899]"


# the line is the CLI's (printed to sys.stderr before the run): one key's run is the command a user types, the
# others go through the CLI's entry point in this interpreter
@pytest.mark.parametrize(("key", "says", "as_command"), [("abc", "not masked", True),
                                                         ("testtest", "only as itself", False), (CANARY, None, False)])
def test_a_run_with_a_weak_key_prints_one_warning_line_without_the_key(key: str, says: str | None, as_command: bool,
                                                                       tmp_path: Path) -> None:
    out = run_either(["run", "--base-url", "http://127.0.0.1:9", "--api-key", key], tmp_path / "r",
                     as_command=as_command)
    assert out.code == 3, out.stderr[-2000:]
    warnings = [line for line in out.stderr.splitlines() if "warning: the API key" in line]
    if says is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and says in warnings[0] and key not in warnings[0], out.stderr


# --- the Unicode classes kept by code point range --------------------------------------------------------


@pytest.mark.parametrize("name", ["format", "invisible", "compatibility"])
def test_the_kept_unicode_ranges_are_what_a_scan_of_this_database_finds(name: str) -> None:
    """conformance/unicode_ranges.py is written for one Unicode version (scripts/unicode_ranges.py); where this
    interpreter has that version the search takes the ranges from it, and they must be a scan's."""
    import unicodedata

    from conformance import secret_forms, unicode_ranges

    scanned = secret_forms.scan(name)
    assert secret_forms.ranges_of(name) == scanned
    if unicodedata.unidata_version == unicode_ranges.UNIDATA_VERSION:
        assert getattr(unicode_ranges, name.upper()) == scanned, "run `python scripts/unicode_ranges.py`"
    # a scan is what it says: every code point of a range is in the class, the one after each is not
    test = secret_forms.CLASSES[name]
    assert all(test(a) and test(b) and not test(b + 1) for a, b in scanned if b + 1 < 0x30000)
    assert test(0x200B) == (name != "compatibility")  # ZERO WIDTH SPACE: Cf, and NFKC keeps it
    assert test(0xFF21) == (name == "compatibility")  # FULLWIDTH LATIN CAPITAL LETTER A


def test_a_long_text_searched_again_is_answered_as_the_first_time_and_the_store_stays_bounded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Long texts keep their view and finds for the next search (a body is searched once per secret and per
    report); what a second search finds is what the first did, and the store drops the oldest past its bound."""
    from conformance import secret_forms

    secret = "sk-live-long-text-0123456789abcdef"
    finder = SecretFinder([secret])
    other = SecretFinder([secret, "another-distinctive-key-9876543210"])
    padding = "lorem ipsum " * 800
    texts = [padding + secret + padding, padding + quote(secret, safe="") + padding,
             padding + "sk\u200b-live-long-text-0123456789abcdef" + padding, padding * 2]
    first = [finder.find(t) for t in texts] + [other.find(t) for t in texts]
    again = [finder.find(t) for t in texts] + [other.find(t) for t in texts]
    assert again == first and [bool(f) for f in first] == [True, True, True, False] * 2
    assert [finder.find(t) for t in texts] == [secret_forms._finder((secret,))._find(t) for t in texts]
    store = secret_forms._LongTexts(200_000)
    monkeypatch.setattr(secret_forms, "_LONG", store)
    for n in range(20):
        finder.find(f"{n:04d}" * 2500)
    assert 0 < len(store.texts) <= 6 and store.chars == sum(e.size for e in store.texts.values()) <= 200_000


@pytest.mark.parametrize("tail", [" ", " is not a valid key", "  ", "\t", "'"])
def test_an_octal_escaped_key_before_a_space_is_found(tail: str) -> None:
    """`\\113 ` is CSS's U+0113 and also octal's K before a space: a key C-escaped inside a sentence (an error
    message, `printf %q`) is found and masked whole, long text or short, and the CSS form still is."""
    octal = "".join(f"\\{ord(c):o}" for c in CANARY)
    css = "".join(f"\\{ord(c):x} " for c in CANARY)
    finder = SecretFinder([CANARY])
    for padding in ("", "lorem ipsum " * 500):
        for form in (octal, css):
            text = f"{padding}the key '{form}{tail}{padding}"
            found = finder.find(text)
            assert found, (form[:20], tail, len(text))
            masked = finder.mask(text)
            assert form.rstrip() not in masked and "\\163\\153\\55" not in masked
