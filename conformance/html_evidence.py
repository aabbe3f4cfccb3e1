"""Failure evidence as pytest-html extras: collapsed by default, redacted before it gets here."""

from __future__ import annotations

import html
import json
from typing import Any

from pytest_html import extras


def _block(title: str, text: str) -> str:
    return f"<div><b>{html.escape(title)}</b><pre>{html.escape(text)}</pre></div>"


def _headers(pairs: list[list[str]] | list[tuple[str, str]]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in pairs)


def evidence_extras(req_id: str, evidence: list[dict[str, Any]]) -> list[dict[str, Any]]:
    parts = []
    for item in evidence:
        request, response = item.get("request", {}), item.get("response")
        body = [f"<details class='sgp-evidence'><summary>{html.escape(req_id)} evidence: "
                f"{html.escape(item.get('scenario', ''))}</summary>"]
        body.append(_block("curl", item.get("curl", "")))
        body.append(_block(f"request {request.get('method', '')} {request.get('url', '')}",
                           _headers(request.get("headers", [])) + "\n\n" + request.get("body", "")))
        if response is not None:
            body.append(_block(f"response {response.get('status')}",
                               _headers(response.get("headers", [])) + "\n\n" + response.get("body", "")))
        if item.get("error"):
            body.append(_block("transport", item["error"]))
        body.append("</details>")
        parts.append("".join(body))
    return [extras.html("".join(parts))] if parts else []


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
