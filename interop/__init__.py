"""Interop: run sgp-conformance against servers it did not write (LiteLLM, Prism, llama-cpp-python).

Each recipe in `interop.recipes` installs one server into its own venv or `node_modules` under a cache
folder outside the checkout (`SGP_INTEROP_CACHE`, default `~/.cache/sgp-conformance-interop`), starts
it on 127.0.0.1 with a free port and stops it by PID. `python -m interop.run` drives them and writes
`interop-results.json`; `python -m interop.docs` turns that file into `docs/interop.md`.
"""
