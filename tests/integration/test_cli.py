"""The `ketch` command as users run it: a real process from the installed console script."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import __version__


def ketch_command() -> list[str]:
    script = Path(sys.executable).parent / "ketch"
    if script.exists():
        return [str(script)]
    found = shutil.which("ketch")
    if found is None:
        pytest.skip("the ketch console script is not installed (run `make test`, which installs it)")
    return [found]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(ketch_command() + list(args), capture_output=True, text=True, timeout=30)


def test_version_prints_the_version():
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"ketch {__version__}"


def test_help_describes_ketch():
    proc = run("--help")
    assert proc.returncode == 0
    assert "Kubernetes" in proc.stdout and "--version" in proc.stdout


def test_no_command_prints_usage_and_exits_2():
    proc = run()
    assert proc.returncode == 2 and "usage: ketch" in proc.stderr


def test_unknown_command_is_a_usage_error():
    proc = run("frobnicate")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_check_exit_codes_follow_the_verdict(tmp_path):
    ok = tmp_path / "ok.jsonl"
    ok.write_text('{"process": 0, "type": "invoke", "f": "write", "value": 1}\n'
                  '{"process": 0, "type": "ok", "f": "write", "value": 1}\n'
                  '{"process": 1, "type": "invoke", "f": "read", "value": null}\n'
                  '{"process": 1, "type": "ok", "f": "read", "value": 1}\n')
    bad = tmp_path / "bad.jsonl"
    bad.write_text(ok.read_text().replace('"ok", "f": "read", "value": 1', '"ok", "f": "read", "value": 2'))
    timeline = tmp_path / "t.html"
    assert run("check", str(ok)).returncode == 0
    result = run("check", str(bad), "--html", str(timeline))
    assert result.returncode == 1 and "No order can include" in result.stdout
    assert "not linearizable" in timeline.read_text()
    assert run("check", str(ok), "--budget", "1").returncode == 2
    garbage = tmp_path / "garbage"
    garbage.write_text("{not a history\n")
    unreadable = run("check", str(garbage), "--format", "json")
    assert unreadable.returncode == 2 and "line 1" in unreadable.stderr
