"""`python tests/mutants <command>` from the repository (or `python -m mutants <command>` with tests/ on the path)."""

import sys
from pathlib import Path

if not __package__:
    # run as a folder: Python put tests/mutants/ itself first on the path, where its modules would shadow
    # others of the same name (errors, headers, ...); the package's parent is what belongs there
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from mutants.cli import main

raise SystemExit(main())
