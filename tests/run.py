#!/usr/bin/env python3
"""Run one Python test module under unittest; exit 77 (ctest: skipped) when the throwaway
PostgreSQL that scripts/test starts is not there (MQ_TEST_PGHOST unset)."""
import os
import sys
import unittest

if __name__ == "__main__":
    if not os.environ.get("MQ_TEST_PGHOST"):
        print("MQ_TEST_PGHOST is not set: run scripts/test (skipping)")
        sys.exit(77)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
    sys.path.insert(0, os.getcwd())
    module = sys.argv[1]
    suite = unittest.defaultTestLoader.loadTestsFromName(module)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)
