"""`sgp-conformance proxy`: judge the real traffic between a real client and a real server.

A reverse proxy on loopback forwards every request unchanged to the upstream and streams each answer back
as it arrives, so the client sees no change but latency. Each chat-completions exchange it carried is then
judged, off the forwarding path, by the same pure checks `validate` applies to a recording
(`conformance.offline.validate.record_findings` / `judgeable`), against the request the client really sent. The
reports are written by a pytest session run the way `validate` runs it, so they have exactly the formats of
`run`, plus a `proxy` section with the counts per requirement.

Modules, in the order an exchange meets them:

- `options`: the command's settings and their validation (the upstream URL, limits, where reports go);
- `forward`: the ASGI app that forwards and records (bounded) what passed through, as an `Observed`;
- `recording`: `Observed` and the named results an exchange can end with;
- `worker`: the thread that judges finished exchanges in order, prints the live line and writes the HAR;
- `judge`: one exchange judged, and the `Tally` (counts per requirement, bounded evidence);
- `sanitize`: the keyless copy of an exchange that is all the proxy keeps;
- `har`: the HAR file written entry by entry, valid JSON after every entry;
- `terminal`: the live line;
- `session`, `reports`: the pytest session that writes the reports, and the summary and exit code;
- `service`: the proxy as an object (start, stop, write reports), which the CLI and the tests drive;
- `cli`: the `proxy` subcommand (flags, signals, the report loop).
"""
