"""The conformance suite, layer 6: the pytest plugin and its session (`run`, `judge`, `plan`, `needs`,
`preflight`), the scenarios and generated cases it sends, and the test modules, one requirement a test."""
