"""docs/ as the package data `conformance.docs`: only contract.md ships (pyproject.toml), so the HTML report
can quote the contract from an installed wheel. conformance/contract/document.py reads it."""
