"""The TypeScript client (clients/typescript, issue 11) against the real daemon and PostgreSQL:
`node clients/typescript/dist/smoke.js` does what a panel does through the client (create,
list page by page, check, update with If-Match, a self token, precheck's 429, typed 4xx
errors) and reports each step. scripts/test compiles the client (types generated from
api-docs/openapi.yaml, tsc --strict) before the tests, so there it always runs; elsewhere it
is skipped (exit 77) only when there is no node to run it."""
import os
import shutil
import subprocess
import sys
import unittest

import mqtest

SOURCE = os.environ.get("MQ_SOURCE_DIR",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CLIENT = os.path.join(SOURCE, "clients", "typescript")
SMOKE = os.path.join(CLIENT, "dist", "smoke.js")
NODE = shutil.which("node")

if NODE is None:
    print("node is not installed: the TypeScript client cannot run (skipping); "
          "scripts/test installs it")
    sys.exit(77)


def stale_inputs():
    """Inputs of the compiled client newer than it (the spec, a source file, the lock file)."""
    built = os.path.getmtime(SMOKE)
    inputs = [os.path.join(SOURCE, "api-docs", "openapi.yaml"),
              os.path.join(CLIENT, "package-lock.json")]
    src = os.path.join(CLIENT, "src")
    inputs += [os.path.join(src, f) for f in os.listdir(src) if f.endswith(".ts")]
    return [os.path.relpath(f, SOURCE) for f in inputs if os.path.getmtime(f) > built]


class TypeScriptClient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(SMOKE):
            raise AssertionError(
                f"{os.path.relpath(SMOKE, SOURCE)} is missing: build the client with "
                "(cd clients/typescript && npm ci && npm run build), as scripts/test does")
        cls.db = mqtest.Database()
        # a precheck budget small enough for the script to see a 429
        cls.d = mqtest.Daemon(cls.db.conninfo, precheck_rate=1, precheck_burst=3,
                              policy_socket="", policy_tcp_listen="")

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.db.close()

    def test_smoke(self):
        stale = stale_inputs()
        if stale:
            # still worth running; the compile step of scripts/test is the gate for these
            print(f"warning: {', '.join(stale)} changed since the client was built",
                  file=sys.stderr)
        env = dict(os.environ, MQ_URL=f"http://127.0.0.1:{self.d.http_port}",
                   MQ_TOKEN=self.d.token, NODE_NO_WARNINGS="1")
        p = subprocess.run([NODE, SMOKE], capture_output=True, text=True, env=env, timeout=120)
        sys.stdout.write(p.stdout)
        self.assertEqual(p.returncode, 0, f"smoke.js failed:\n{p.stdout}{p.stderr}")
        self.assertIn(" passed, 0 failed", p.stdout)


if __name__ == "__main__":
    unittest.main()
