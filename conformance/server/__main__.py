import sys

from conformance.server.cli import serve_main

sys.exit(serve_main(prog="python -m conformance.server"))
