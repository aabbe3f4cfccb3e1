"""Reports, layer 4: the outcome model, per-requirement results, conformance.json, the HTML and JUnit
reports, the terminal summary, evidence, the census, the baseline and the diff between two runs. It reads
exchanges and checks' findings; it never imports the suite, offline judging or the CLI."""
