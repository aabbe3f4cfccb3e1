"""The proxy masks every key it has seen in the whole run, in every record it writes: an upstream that echoes
one client's key into another client's exchange, or a key into an exchange before its client came through
the proxy, leaves no form of it in the HAR, conformance.json, junit.xml, the HTML page or the terminal."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from proxy_support import running_proxy, sdk_client, sdk_create, terminal
from report_fixtures import BodyRewriter, echoed_forms, secret_forms_found

from conformance.contract.profiles import get_profile
from conformance.server import ServerSettings, start_server
from conformance.server.app import create_app

KEY_A = "sk-client-A-5b9d13f7e2a4c6081"
KEY_B = "sk-client-B-0e8c6a4f2d1b3957"
# the upstream knows this one before its client sends it through the proxy: it is echoed first
KEY_C = "sk-client-C-7a1f3e5c9b2d4860"


class Leaky:
    """Echoes every key it has been sent, and KEY_C from the start, into each answer: body and headers."""

    def __init__(self) -> None:
        self.keys = [KEY_C]

    def _remember(self, scope: dict[str, Any]) -> list[str]:
        sent = dict(scope.get("headers", [])).get(b"x-api-key", b"").decode()
        echoed = list(self.keys)
        if sent and sent not in self.keys:
            self.keys.append(sent)
        return echoed

    def rewrite(self, scope: dict[str, Any], doc: Any) -> Any:
        if isinstance(doc, dict):
            doc["echo"] = {key: {"plain": key, **echoed_forms(key)} for key in self._remember(scope)}
        return doc

    def headers(self, scope: dict[str, Any]) -> list[tuple[bytes, bytes]]:
        return [(b"x-seen-keys", " ".join(key.upper() for key in self.keys).encode())]


def test_a_key_echoed_into_another_clients_exchange_is_masked_in_every_record(tmp_path: Path) -> None:
    leaky = Leaky()
    settings = ServerSettings(profile=get_profile("sgp"), api_keys=(KEY_A, KEY_B, KEY_C))
    upstream = start_server(BodyRewriter(create_app(settings), leaky.rewrite, leaky.headers),
                            profile=settings.profile)
    har = tmp_path / "traffic.har"
    try:
        with running_proxy(upstream.base_url, tmp_path, "--har", str(har)) as proxy:
            for key in (KEY_A, KEY_B, KEY_C):
                sdk_create(sdk_client("sgp", proxy.listen_url, key), "sgp", stream=False)
            proxy.stop()
            code, summary = proxy.finish()
    finally:
        upstream.stop()
    # the upstream did echo: AUTH-007 saw it on the exchanges whose own key came back
    doc = json.loads((tmp_path / "reports" / "conformance.json").read_text(encoding="utf-8"))
    assert next(r for r in doc["results"] if r["id"] == "AUTH-007")["status"] == "fail", summary
    assert code == 1 and "SECRET LEAK" not in summary
    written = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert {"traffic.har", "conformance.json", "junit.xml", "conformance.html"} <= set(written)
    written["terminal"] = "\n".join(terminal(proxy)).encode()
    written["summary"] = summary.encode()
    for name, data in written.items():
        for key in (KEY_A, KEY_B, KEY_C):
            assert secret_forms_found(data, key) == [], f"{name} holds {key[:11]}…"
    # still well-formed: the HAR re-masked entry by entry, the reports as written
    entries = json.loads(written["traffic.har"])["log"]["entries"]
    assert len(entries) == 3 and all("***" in e["response"]["content"]["text"] for e in entries)
    ET.fromstring(written["junit.xml"])
