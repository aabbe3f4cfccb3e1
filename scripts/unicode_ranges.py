"""Write conformance/unicode_ranges.py: the code point ranges of the Unicode classes the secret search uses.

    python scripts/unicode_ranges.py

Scanning every code point for its category and its NFKC form takes about 0.12 s, at the start of every
process that searches for a secret (the first report written, the first AUTH-007 check); the ranges only
change with the Unicode database, so they are computed once, here, for this Python's database version.
conformance.secret_forms uses them when its own database has that version and scans otherwise.
tests/test_secret_forms.py fails when the file and a scan disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "conformance" / "unicode_ranges.py"


def render() -> str:
    sys.path.insert(0, str(ROOT))
    import unicodedata

    from conformance import secret_forms

    lines = ['"""The code point ranges of the Unicode classes the secret search uses (conformance.secret_forms),',
             f"for Unicode {unicodedata.unidata_version}. Written by scripts/unicode_ranges.py: do not edit.",
             '"""', "", f'UNIDATA_VERSION = "{unicodedata.unidata_version}"', ""]
    for name in secret_forms.CLASSES:
        ranges = secret_forms.scan(name)
        lines.append(f"{name.upper()}: tuple[tuple[int, int], ...] = (")
        row = "   "
        for a, b in ranges:
            item = f" (0x{a:X}, 0x{b:X}),"
            if len(row) + len(item) > 116:
                lines.append(row)
                row = "   "
            row += item
        lines += [row, ")", ""]
    return "\n".join(lines[:-1]) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
