#!/usr/bin/env python3
"""Run one Python test module under unittest; exit 77 (ctest: skipped) when the throwaway
PostgreSQL that scripts/test starts is not there (MQ_TEST_PGHOST unset), unless the module
says it needs none (NEEDS_DATABASE = False)."""
import os
import re
import sys
import unittest

if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
    sys.path.insert(0, os.getcwd())
    # a module that needs no database says so on a line of its own and always runs; the
    # others are not even imported without one
    with open(sys.argv[1].split(".")[0] + ".py") as f:
        needs_db = re.search(r"^NEEDS_DATABASE = False\b", f.read(), re.M) is None
    if needs_db and not os.environ.get("MQ_TEST_PGHOST"):
        print("MQ_TEST_PGHOST is not set: run scripts/test (skipping)")
        sys.exit(77)
    suite = unittest.defaultTestLoader.loadTestsFromName(sys.argv[1])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)
