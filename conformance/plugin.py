"""The suite's pytest plugin under its public name, `conformance.plugin` (the `pytest11` entry point, and
`-p conformance.plugin`). The code lives in `conformance.suite.plugin`; this name is the same module object,
so the plugin is registered once whichever name loads it, and `from conformance.plugin import requirement,
Judge, Run, STASH_RUN` keeps working for test modules written against it.
"""

import sys

from conformance.suite import plugin as _plugin

sys.modules[__name__] = _plugin
