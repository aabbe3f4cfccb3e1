"""`sgp-conformance compare A B`: the same seeded cases sent to two targets and their answers compared field by
field (fields.py), reported as JSON and HTML grouped by requirement (report.py); command.py runs it.
"""
