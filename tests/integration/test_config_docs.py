"""The commented default configuration (contrib/mailquota.conf, the Debian package's
/etc/mailquota/mailquota.conf) and mailquota.conf(5) list every parameter of the table in
src/core/config.c with its help text and default, as scripts/gen-config-docs writes them, and
the built mailquotad prints the same parameters with the same defaults; the default file is a
valid configuration that changes nothing, and the manual page formats without a warning."""
import os
import shutil
import subprocess
import unittest

import mqtest

NEEDS_DATABASE = False  # tests/run.py runs it without the throwaway PostgreSQL too

SRC = os.environ.get("MQ_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
MAILQUOTAD = os.path.join(mqtest.BIN, "mailquotad")


class ConfigDocs(unittest.TestCase):
    def test_generated_files_match_the_table_and_the_daemon(self):
        p = subprocess.run([os.path.join(SRC, "scripts", "gen-config-docs"), "--check",
                            "--mailquotad", MAILQUOTAD], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_default_file_is_valid_and_changes_nothing(self):
        conf = os.path.join(SRC, "contrib", "mailquota.conf")
        p = subprocess.run([MAILQUOTAD, "-c", conf, "-n"], capture_output=True, text=True)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "configuration OK"), p.stderr)
        p = subprocess.run([MAILQUOTAD, "-c", conf, "-P"], capture_output=True, text=True)
        self.assertEqual((p.returncode, p.stdout), (0, ""), p.stderr)

    @unittest.skipUnless(shutil.which("groff"), "no groff")
    def test_manual_page_formats_cleanly(self):
        page = os.path.join(SRC, "docs", "man", "mailquota.conf.5")
        p = subprocess.run(["groff", "-man", "-ww", "-z", page], capture_output=True, text=True)
        self.assertEqual((p.returncode, p.stderr), (0, ""))


if __name__ == "__main__":
    unittest.main()
