"""`ketch kv` as a user runs it against a real cluster: output, JSON, exit codes."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest


def ketch(cluster, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env_flags = ["--endpoints", ",".join(cluster.endpoints), "--token-file", str(cluster.token_file)]
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "kv", *env_flags, *args],
                          capture_output=True, text=True, timeout=60, input=stdin)


@pytest.fixture
def cluster(ready_cluster):
    return ready_cluster


async def test_put_get_del_like_etcdctl(cluster):
    assert ketch(cluster, "put", "fruit/apple", "red").stdout == "OK\n"
    assert ketch(cluster, "put", "fruit/pear", "green").returncode == 0
    assert ketch(cluster, "get", "fruit/", "--prefix").stdout == "fruit/apple\nred\nfruit/pear\ngreen\n"
    out = json.loads(ketch(cluster, "get", "fruit/apple", "-w", "json").stdout)
    assert base64.b64decode(out["kvs"][0]["value"]) == b"red" and out["count"] == 1
    assert ketch(cluster, "del", "fruit/", "--prefix").stdout == "2\n"
    assert ketch(cluster, "get", "fruit/", "--prefix", "--count-only").stdout == "0\n"


async def test_txn_lease_and_status(cluster):
    txn = json.dumps({"compare": [{"target": "version", "result": "=", "key": "lock", "value": 0}],
                      "success": [{"op": "put", "key": "lock", "value": "me"}]})
    assert ketch(cluster, "txn", stdin=txn).stdout == "SUCCESS\n"
    assert ketch(cluster, "txn", stdin=txn).stdout == "FAILURE\n"
    granted = ketch(cluster, "lease", "grant", "30").stdout
    lease_hex = granted.split()[1]
    assert granted.endswith("granted with TTL(30s)\n")
    assert ketch(cluster, "put", "held", "x", "--lease", lease_hex).returncode == 0
    ttl = ketch(cluster, "lease", "ttl", lease_hex, "--keys").stdout
    assert "attached keys(held)" in ttl
    status = json.loads(ketch(cluster, "status", "-w", "json").stdout)
    assert status["revision"] >= 3 and status["leader"] is not None


async def test_exit_codes(cluster):
    failed = ketch(cluster, "get", "k", "--rev", "999")
    assert failed.returncode == 1 and "FUTURE_REVISION" in failed.stderr
    usage = ketch(cluster, "get")
    assert usage.returncode == 2 and "required" in usage.stderr
    nobody = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "kv", "--token-file", "/nonexistent", "get", "k"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert nobody.returncode == 2 and "cannot read /nonexistent" in nobody.stderr


def test_serve_with_bad_config_exits_2_with_one_line(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("x" * 40)
    secret.chmod(0o644)
    (tmp_path / "tokens").write_text("t\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator.cli",
            "kv",
            "serve",
            "--name",
            "a",
            "--data-dir",
            str(tmp_path / "d"),
            "--initial-cluster",
            "a=127.0.0.1:1",
            "--token-file",
            str(tmp_path / "tokens"),
            "--peer-secret-file",
            str(secret),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"ketch kv serve: peer secret file {secret} is readable by others; chmod 600 it"
    ]


def test_secret_new_writes_mode_0600_and_never_overwrites(tmp_path):
    path = tmp_path / "s"
    run = [sys.executable, "-m", "orchestrator.cli", "kv", "secret", "new", str(path)]
    assert subprocess.run(run, capture_output=True, timeout=30).returncode == 0
    assert path.stat().st_mode & 0o777 == 0o600 and len(path.read_text().strip()) == 64
    again = subprocess.run(run, capture_output=True, text=True, timeout=30)
    assert again.returncode == 2 and "exists" in again.stderr
