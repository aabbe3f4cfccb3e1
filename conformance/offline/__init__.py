"""Judging traffic the suite did not send, layer 7: readers of recorded traffic (HAR, JSONL, SSE and HTTP
transcripts) and `sgp-conformance validate`, which judges them with the suite's own checks and reports."""
