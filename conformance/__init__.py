"""sgp-conformance: a conformance suite for the SGP chat-completions API."""

__version__ = "0.1.0"
