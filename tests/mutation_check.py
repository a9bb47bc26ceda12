"""Break one kv rule at a time on a scratch copy and check the property tests notice.

    .venv/bin/python tests/mutation_check.py [--only NAME]

A test suite that cannot fail proves nothing: each mutant below breaks one etcd rule the MVCC
core keeps, and the stateful/property tests (tests/stateful) must fail on every one of them.
A mutant counts as caught only when a test's assertion fails: an import error, a collection error
or a crash of the test run says nothing about the tests' power and is reported as such.
Exit 0 when every mutant is caught. Not part of `make test` (it runs the suite once per mutant).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parent.parent

# (name, file, original text, broken text)
MUTANTS = [
    ("version not bumped on put", "kvstore/mvcc.py", "prev.version + 1, lease)", "prev.version, lease)"),
    (
        "create_revision moves on update",
        "kvstore/mvcc.py",
        "KeyValue(key, value, prev.create_revision, rev,",
        "KeyValue(key, value, rev, rev,",
    ),
    (
        "re-created key keeps its old version",
        "kvstore/mvcc.py",
        "prev = hist[-1][1] if hist else None\n        if prev is None:",
        "prev = hist[-1][1] if hist else None\n        if hist is None:",
    ),
    ("range_end inclusive", "kvstore/mvcc.py", "inclusive=(True, False)", "inclusive=(True, True)"),
    ("more never set", "kvstore/mvcc.py", "count > len(kvs))", "False)"),
    ("limit ignored", "kvstore/mvcc.py", "if not limit or len(kvs) < limit:", "if True:"),
    ("keys_only returns values", "kvstore/state_machine.py", 'b"" if keys_only else kv.value', "kv.value"),
    ("count_only returns kvs", "kvstore/state_machine.py", "[] if req.count_only else ", ""),
    (
        "historical read off by one",
        "kvstore/mvcc.py",
        "i = bisect_right(hist, revision, key=_revision_of) - 1",
        "i = bisect_right(hist, revision - 1, key=_revision_of) - 1",
    ),
    (
        "empty delete bumps the revision",
        "kvstore/mvcc.py",
        "        if events:\n            self.revision",
        "        if True:\n            self.revision",
    ),
    (
        "reads below compaction allowed",
        "kvstore/mvcc.py",
        "if revision < self.compact_revision:\n            raise compacted",
        "if False:\n            raise compacted",
    ),
    (
        "read at the compact revision refused",
        "kvstore/mvcc.py",
        "if revision < self.compact_revision:\n            raise compacted",
        "if revision <= self.compact_revision:\n            raise compacted",
    ),
    (
        "compaction beyond current allowed",
        "kvstore/mvcc.py",
        "if revision > self.revision:\n            raise future_revision(self.revision)\n        emptied",
        "if False:\n            raise future_revision(self.revision)\n        emptied",
    ),
    (
        "compaction drops the newest version at the compact revision",
        "kvstore/mvcc.py",
        "keep_from = bisect_right(hist, revision, key=_revision_of) - 1",
        "keep_from = bisect_right(hist, revision, key=_revision_of)",
    ),
    (
        "watch below compaction allowed",
        "kvstore/mvcc.py",
        "if start_revision < self.compact_revision:",
        "if start_revision < self.compact_revision - 1:",
    ),
    (
        "watch loses prev_kv",
        "kvstore/mvcc.py",
        "self._pending.append(Event(PUT, kv, prev))",
        "self._pending.append(Event(PUT, kv, None))",
    ),
    (
        "missing key compares as zero for value",
        "kvstore/state_machine.py",
        'return cmp.target != "value" and _compare',
        "return _compare",
    ),
    (
        "txn compares: any instead of all",
        "kvstore/state_machine.py",
        "succeeded = all(self._compare_holds(c)",
        "succeeded = any(self._compare_holds(c)",
    ),
    ("compare > is >=", "kvstore/state_machine.py", "return actual > expected", "return actual >= expected"),
    ("txn writes not checked before writing", "kvstore/state_machine.py", "        self._check_plan(plan)\n", ""),
    (
        "put with unknown lease accepted",
        "kvstore/state_machine.py",
        "        if req.lease:\n            self.leases.require(req.lease)\n",
        "",
    ),
    ("lease expires one tick late", "kvstore/leases.py", "if lease.deadline <= now)", "if lease.deadline < now)"),
    (
        "keepalive extends from the old deadline",
        "kvstore/leases.py",
        "lease.deadline = now + lease.ttl\n",
        "lease.deadline = lease.deadline + lease.ttl\n",
    ),
    (
        "promote ignores the new leader's clock",
        "kvstore/leases.py",
        "lease.deadline = now + lease.ttl + extend_s",
        "lease.deadline = lease.deadline + extend_s",
    ),
    ("no minimum lease ttl", "kvstore/leases.py", "ttl = max(ttl, MIN_LEASE_TTL_S)", "ttl = ttl"),
    (
        "revoke keeps the keys",
        "kvstore/state_machine.py",
        "            self.keys.delete_range(key, None)\n",
        "            pass\n",
    ),
    (
        "key stays attached after put without lease",
        "kvstore/state_machine.py",
        "                self.leases.detach(prev.lease, prev.key)",
        "                pass",
    ),
    (
        "retried write applied again",
        "kvstore/state_machine.py",
        "            if recorded is not None:\n                return recorded",
        "            if False:\n                return recorded",
    ),
    (
        "failed write recorded for exactly-once",
        "kvstore/state_machine.py",
        "        try:\n            return self.apply(command)\n        except KVError as err:\n            return err",
        "        try:\n            return self.apply(command)\n        except KVError as err:\n"
        "            if isinstance(command, dict):\n"
        "                self.sessions.record(command.get('client_id') or b'x', command.get('seq') or 0, {})\n"
        "            return err",
    ),
    (
        "empty key accepted",
        "kvstore/requests.py",
        '    if not key:\n        raise invalid("key is not provided")\n',
        "",
    ),
    (
        "snapshot forgets sessions",
        "kvstore/snapshot.py",
        "        machine.sessions.clients[client_id] = ClientSession(dict(results), floor)",
        "        pass",
    ),
    (
        "snapshot forgets lease attachments",
        "kvstore/snapshot.py",
        "            machine.leases.attach(kv.lease, kv.key)",
        "            pass",
    ),
]


def verdict(report: Path, returncode: int) -> str:
    """"caught" (a test assertion failed), "MISSED" (every test passed), or what went wrong instead."""
    if returncode == 0:
        return "MISSED"
    try:
        root = ElementTree.parse(report).getroot()
    except (OSError, ElementTree.ParseError):
        return f"BROKEN (pytest exit {returncode}, no report)"
    if any(True for _ in root.iter("error")):
        return "BROKEN (collection or fixture error)"
    failures = [(f.get("message", ""), f.text or "") for f in root.iter("failure")]
    # an assert statement ("assert 4 == 3"), an AssertionError, or pytest's own check failing
    # (pytest.raises: "Failed: DID NOT RAISE ...")
    if any(message.startswith(("assert ", "AssertionError", "Failed: ")) or "\nE   AssertionError" in text
           or "\nE       AssertionError" in text for message, text in failures):
        return "caught"
    return f"BROKEN (failed without an assertion: {[m for m, _ in failures[:1]]})"


def run_mutant(name: str, path: str, original: str, broken: str) -> tuple[str, float]:
    with tempfile.TemporaryDirectory(prefix="ketch-mutant-") as tmp:
        scratch = Path(tmp)
        for part in ("kvstore", "tests", "pyproject.toml"):  # the tests as they are now
            source = ROOT / part
            if source.is_dir():
                shutil.copytree(source, scratch / part, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(source, scratch / part)
        target = scratch / path
        text = target.read_text()
        if text.count(original) != 1:
            raise SystemExit(f"mutant {name!r}: the original text is not found exactly once in {path}")
        target.write_text(text.replace(original, broken))
        started = time.monotonic()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-x",
                "-q",
                "-p",
                "no:cacheprovider",
                "--hypothesis-profile=mutation",
                f"--junitxml={scratch / 'report.xml'}",
                "tests/stateful",
            ],
            cwd=scratch,
            capture_output=True,
            text=True,
        )
        return verdict(scratch / "report.xml", proc.returncode), time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="run the mutants whose name contains this")
    args = parser.parse_args()
    missed = []
    for name, path, original, broken in MUTANTS:
        if args.only and args.only not in name:
            continue
        outcome, seconds = run_mutant(name, path, original, broken)
        print(f"{outcome:7} {seconds:6.1f}s  {name}", flush=True)
        if outcome != "caught":
            missed.append(name)
    print(f"{len(missed)} missed" if missed else "every mutant was caught")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
