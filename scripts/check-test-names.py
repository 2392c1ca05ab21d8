#!/usr/bin/env python3
"""Checks that every Catch2 test CTest runs selects a test case.

catch_discover_tests runs each test case as `BINARY "NAME"`, NAME being a
Catch2 filter. A name that does not select its own test case (a `;` splits
it into two CMake list items, a `\\,` written in the source becomes a
literal backslash) runs no test and passes: a test that cannot fail. This
lists what each command selects and fails naming every one that selects
nothing.

    scripts/check-test-names.py BUILD_DIR
"""
import shlex
import subprocess
import sys

build = sys.argv[1] if len(sys.argv) > 1 else "build"
listing = subprocess.run(["ctest", "-N", "-V"], cwd=build, capture_output=True,
                         text=True, check=True).stdout
empty = []
checked = 0
for line in listing.splitlines():
    if "Test command:" not in line:
        continue
    args = shlex.split(line.split("Test command:", 1)[1])
    # Catch2 executables under tests/ with a name filter; scripts have none.
    if len(args) < 2 or "/tests/" not in args[0] or args[0].endswith((".sh", ".py")):
        continue
    filters = [a for a in args[1:] if not a.startswith("-")]
    if not filters:
        continue
    out = subprocess.run(args + ["--list-test-names-only"], cwd=build,
                         capture_output=True, text=True).stdout
    checked += 1
    if not any(l.strip() for l in out.splitlines()):
        empty.append(" ".join(shlex.quote(a) for a in args))
for cmd in empty:
    print("selects no test case:", cmd)
print(f"test names: {checked} checked, {len(empty)} select nothing")
sys.exit(1 if empty else 0)
