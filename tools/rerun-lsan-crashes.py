#!/usr/bin/env python3
"""rerun-lsan-crashes.py BUILDDIR [MESON TEST ARG...]

Called after a sanitizer `meson test` in BUILDDIR failed. LeakSanitizer's
own stop-the-world tracer sometimes crashes at exit ("Tracer caught signal
11 ... LeakSanitizer has encountered a fatal error"), a race with a thread
that was joined just before exit still leaving the kernel
(google/sanitizers#1353). That crash says nothing about the program, so
tests that failed with it, and only with it, are run once more; any other
failure (a leak report, an ASan or UBSan finding, a failed TAP subtest, in
the same test or another) fails at once, as does a crash that happens again.

Exit status: 0 when the tests re-run pass, 1 otherwise.
"""
import json
import re
import subprocess
import sys

SIGNATURE = "LeakSanitizer has encountered a fatal error"
PASSED = {"OK", "SKIP", "EXPECTEDFAIL"}
# What makes a failure the test's own even when the tracer crashed too: a
# failed TAP subtest, a leak report, an ASan or UBSan finding.
OWN_FAILURE = re.compile(r"^not ok\b|ERROR: (Leak|Address)Sanitizer|runtime error:", re.M)


def failed_tests(builddir):
    """Returns [(name, output)] of the failed tests in BUILDDIR's last test log."""
    failed = []
    with open(builddir + "/meson-logs/testlog.json", encoding="utf-8") as log:
        for line in log:
            test = json.loads(line)
            if test["result"] not in PASSED:
                output = (test.get("stdout") or "") + (test.get("stderr") or "")
                failed.append((test["name"], output))
    return failed


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: rerun-lsan-crashes.py BUILDDIR [MESON TEST ARG...]")
    builddir, test_args = sys.argv[1], sys.argv[2:]
    failed = failed_tests(builddir)
    if not failed:
        print("rerun-lsan-crashes: no failed test in the log; the run failed otherwise")
        return 1
    others = [name for name, output in failed if SIGNATURE not in output or OWN_FAILURE.search(output)]
    if others:
        print("rerun-lsan-crashes: failed for a reason of their own: " + ", ".join(others))
        return 1
    # "mlx:lua+pg / deploy_pg" -> "deploy_pg"; the suite arguments keep
    # same-named tests of other suites out.
    names = sorted({name.rsplit(" / ", 1)[-1] for name, _ in failed})
    print("rerun-lsan-crashes: LeakSanitizer's tracer crashed in " + ", ".join(names) + "; running them again")
    command = ["meson", "test", "-C", builddir, "--print-errorlogs", *test_args, *names]
    return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
