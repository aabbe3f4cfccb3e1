"""Command line entry point (filled in by the suite issue)."""


def main() -> int:
    return 0
