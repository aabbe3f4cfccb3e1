"""Requests on the wire, layer 2: the bounded HTTP client, the recorded `Exchange`, SSE parsing, strict JSON
and the network route. It reads the contract and the configuration; it never imports checks or reports."""
