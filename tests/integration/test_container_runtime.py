"""The container runtimes (contract A) as the kubelet drives them, on this machine: runc, process
(namespaces without runc) and local (plain processes). Exit codes and logs, OOMKilled, exec,
signals, OCI image import with whiteouts, and nothing left behind after removal."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import tarfile
import time
from pathlib import Path

import pytest

from orchestrator.kubelet.runtime import choose_runtime
from orchestrator.kubelet.runtime.base import (
    PID_HOST,
    PID_POD,
    ContainerConfig,
    ImageNotFound,
    Resources,
    RuntimeFailure,
    SandboxConfig,
)
from orchestrator.kubelet.runtime.images import ImageImportError, ImageStore
from orchestrator.processes import alive

UID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def _why_not(name: str) -> str:
    if name in ("runc", "process") and os.geteuid() != 0:
        return f"the {name} runtime needs root"
    if name == "runc" and not shutil.which("runc"):
        return "runc is not installed (apt-get install runc)"
    if not Path("/bin/busybox").exists():
        return "the builtin busybox image needs /bin/busybox (apt-get install busybox-static)"
    return ""


@pytest.fixture(params=["runc", "process", "local"])
def runtime(request, tmp_path):
    reason = _why_not(request.param)
    if reason:
        pytest.skip(reason)
    images = ImageStore(tmp_path / "images")
    rt = choose_runtime(request.param, tmp_path / "node", images, f"ketch-test-{os.getpid()}-{request.param}")
    sandbox = SandboxConfig(UID, "default", "p", "p", None, "nameserver 10.96.0.10\n", "127.0.0.1 localhost\n",
                            Resources())
    rt.create_sandbox(sandbox)
    rt.test_sandbox = sandbox
    rt.test_name = request.param
    try:
        yield rt
    finally:
        for state in rt.list_containers():
            if state.state == "running":
                rt.signal(state.id, signal.SIGKILL)
        for state in rt.list_containers():
            _wait_exited(rt, state.id)
            rt.remove_container(state.id)
        rt.remove_sandbox(UID)
        rt.remove_node_state()


def _start(rt, argv, name="c", attempt=0, resources=None, image="busybox"):
    return rt.start_container(rt.test_sandbox, ContainerConfig(UID, name, attempt, image, argv, [("GREETING", "hi")],
                                                               None, [], resources or Resources()))


def _wait_exited(rt, container_id, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = next(s for s in rt.list_containers() if s.id == container_id)
        if state.state == "exited":
            return state
        time.sleep(0.05)
    raise AssertionError(f"{container_id} still running after {timeout_s} s")


def _log_lines(state) -> list[tuple[str, str]]:
    """(stream, text) of each CRI log line: `<time> <stream> F <text>`."""
    return [(line.split(" ", 3)[1], line.split(" ", 3)[3]) for line in Path(state.log_path).read_text().splitlines()]


def test_exit_code_environment_and_both_streams_reach_the_cri_log(runtime):
    started = _start(runtime, ["sh", "-c", "echo out $GREETING; echo err >&2; exit 3"])
    done = _wait_exited(runtime, started.id)
    assert (done.exit_code, done.reason) == (3, "Error")
    assert sorted(_log_lines(done)) == [("stderr", "err"), ("stdout", "out hi")]


def test_the_pod_sees_its_resolv_conf_unless_it_shares_the_host(runtime):
    done = _wait_exited(runtime, _start(runtime, ["cat", "/etc/resolv.conf"]).id)
    if runtime.test_name == "local":
        assert done.exit_code == 0  # plain processes see the host's files
    else:
        assert _log_lines(done) == [("stdout", "nameserver 10.96.0.10")]


def test_a_memory_limit_kills_with_oom_killed_137(runtime):
    if runtime.test_name == "local":
        pytest.skip("the local runtime sets no limits (no cgroups without root)")
    started = _start(runtime, ["dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1"],
                     resources=Resources(memory_limit_bytes=32 * 1024 * 1024))
    done = _wait_exited(runtime, started.id)
    assert (done.exit_code, done.reason) == (137, "OOMKilled")


def test_exec_runs_beside_the_container_and_sigkill_stops_it(runtime):
    started = _start(runtime, ["sleep", "300"])
    process = runtime.exec(started.id, ["sh", "-c", "echo from-exec; exit 5"], stdin=False, tty=False)
    output = b""
    while chunk := os.read(process.stdout, 4096):
        output += chunk
    assert (output, process.wait()) == (b"from-exec\n", 5)
    runtime.signal(started.id, signal.SIGKILL)
    done = _wait_exited(runtime, started.id)
    assert done.exit_code == 137


def test_a_container_given_a_target_shares_its_processes_and_one_without_does_not(runtime):
    """kubectl debug --target: the debugging container joins the target's PID namespace."""
    if runtime.test_name == "local":
        pytest.skip("the local runtime has no PID namespaces: every process sees every other")
    target = _start(runtime, ["sleep", "3600"], name="app")
    shared = runtime.start_container(runtime.test_sandbox, ContainerConfig(
        UID, "debugger", 0, "busybox", ["ps", "-o", "args"], [], None, [], Resources(), pid_namespace_of=target.id))
    alone = _start(runtime, ["ps", "-o", "args"], name="alone")
    assert ("stdout", "sleep 3600") in _log_lines(_wait_exited(runtime, shared.id))
    assert ("stdout", "sleep 3600") not in _log_lines(_wait_exited(runtime, alone.id))
    runtime.signal(target.id, signal.SIGKILL)
    _wait_exited(runtime, target.id)
    with pytest.raises(RuntimeFailure, match="not running"):
        runtime.start_container(runtime.test_sandbox, ContainerConfig(
            UID, "late", 0, "busybox", ["true"], [], None, [], Resources(), pid_namespace_of=target.id))


@pytest.mark.parametrize("pid_mode", [PID_POD, PID_HOST])
def test_a_pod_that_shares_its_processes_or_the_hosts_sees_them(runtime, pid_mode):
    """shareProcessNamespace: the containers see each other's processes, none is PID 1 (the
    holder is, as pause is in Kubernetes), and the namespace outlives any one container. hostPID:
    the host's processes, this test's among them."""
    if runtime.test_name == "local":
        pytest.skip("the local runtime has no PID namespaces: every process sees every other")
    uid = "5a5a5a5a-0000-4000-8000-00000000" + pid_mode[:4].ljust(4, "0")
    sandbox = SandboxConfig(uid, "default", "shared", "shared", None, "", "", Resources(), pid_mode=pid_mode)
    try:
        runtime.create_sandbox(sandbox)

        def run(name, argv):
            return runtime.start_container(sandbox, ContainerConfig(uid, name, 0, "busybox", argv, [], None, [],
                                                                    Resources()))
        first = run("first", ["sleep", "3600"])
        holder = int((runtime.sandbox_dir(uid) / "pid-holder.pid").read_text()) if pid_mode == PID_POD else 0
        looked = _wait_exited(runtime, run("look", ["ps", "-o", "pid,args"]).id)
        seen = dict(text.strip().split(None, 1) for _, text in _log_lines(looked))  # pid -> command line
        assert "sleep 3600" in seen.values()
        if pid_mode == PID_HOST:
            assert str(os.getpid()) in seen
        else:
            assert [pid for pid, args in seen.items() if args == "sleep 3600"] != ["1"]
            runtime.signal(first.id, signal.SIGKILL)
            _wait_exited(runtime, first.id)
            after = _wait_exited(runtime, run("after", ["sh", "-c", "echo alive"]).id)
            assert _log_lines(after) == [("stdout", "alive")]  # the pod's namespace outlived its first container
            _wait_exited(runtime, run("poke", ["sh", "-c", "kill -INT 1; kill -TERM 1; kill -USR1 1"]).id)
            assert alive(holder)  # a container cannot end the pod's namespace by signalling its PID 1
            os.kill(holder, signal.SIGKILL)  # ended anyway (say, the OOM killer): the next container gets a new one
            _wait_gone(holder)
            again = _wait_exited(runtime, run("again", ["sh", "-c", "echo alive"]).id)
            assert _log_lines(again) == [("stdout", "alive")]
            holder = int((runtime.sandbox_dir(uid) / "pid-holder.pid").read_text())
    finally:
        for state in runtime.list_containers():
            if state.pod_uid == uid:
                if state.state == "running":
                    runtime.signal(state.id, signal.SIGKILL)
                runtime.remove_container(_wait_exited(runtime, state.id).id)
        runtime.remove_sandbox(uid)
    if pid_mode == PID_POD:  # the holder goes with the sandbox
        _wait_gone(holder)


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid), f"process {pid} still runs"


def test_removal_leaves_no_container_directory_or_cgroup(runtime):
    started = _start(runtime, ["true"])
    _wait_exited(runtime, started.id)
    runtime.remove_container(started.id)
    assert started.id not in {s.id for s in runtime.list_containers()}
    assert not (runtime.root / "containers" / started.id).exists()
    runtime.remove_sandbox(UID)
    assert not runtime.pod_logs_dir(UID).exists()
    assert not runtime.sandbox_dir(UID).exists()
    assert not [path for path in runtime.pod_cgroup(UID).everywhere() if path.exists()]


def test_a_running_container_cannot_be_removed_and_an_unknown_one_is_a_clear_error(runtime):
    started = _start(runtime, ["sleep", "300"])
    with pytest.raises(RuntimeFailure, match="running"):
        runtime.remove_container(started.id)
    with pytest.raises(RuntimeFailure, match="no such container"):
        runtime.remove_container("../../etc")


# --- images ------------------------------------------------------------------------------------------


def _layer(files: dict[str, bytes | str]) -> bytes:
    """A gzipped layer tar: bytes are files, a str is a symlink target."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            if isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                archive.addfile(info)
            else:
                info.size, info.mode = len(content), 0o755
                archive.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue())


def _oci_layout(directory: Path, layers: list[bytes], ref: str, config: dict) -> Path:
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}
    config_blob = put(json.dumps({"architecture": "amd64", "os": "linux", "config": config}).encode())
    manifest = {"schemaVersion": 2, "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_blob},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **put(layer)}
                           for layer in layers]}
    manifest_blob = put(json.dumps(manifest).encode())
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (directory / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest_blob,
         "annotations": {"org.opencontainers.image.ref.name": ref}}]}))
    return directory


def test_an_imported_oci_image_runs_with_its_layers_whiteouts_and_entrypoint(runtime, tmp_path):
    busybox = Path("/bin/busybox").read_bytes()
    base = _layer({"bin/busybox": busybox, "bin/sh": "busybox", "bin/cat": "busybox", "gone.txt": b"old\n"})
    top = _layer({".wh.gone.txt": b"", "greeting.txt": b"from the top layer\n"})
    layout = _oci_layout(tmp_path / "layout", [base, top], "lab.local/greeter:1.0",
                         {"Entrypoint": ["sh", "-c"], "Cmd": ["cat /greeting.txt; cat /gone.txt || echo whited-out"],
                          "Env": ["PATH=/bin"]})
    assert runtime.images.import_path(layout) == ["lab.local/greeter:1.0"]
    image = runtime.image_config("lab.local/greeter:1.0")
    assert (image.entrypoint, image.cmd[0][:9]) == (["sh", "-c"], "cat /gree")
    if runtime.test_name == "local":
        return  # plain processes run the host's files, not an image's
    started = _start(runtime, image.entrypoint + image.cmd, image="lab.local/greeter:1.0")
    done = _wait_exited(runtime, started.id)
    lines = _log_lines(done)
    assert [text for stream, text in lines if stream == "stdout"] == ["from the top layer", "whited-out"], lines


def test_bad_images_are_refused_with_what_is_wrong(tmp_path):
    store = ImageStore(tmp_path / "images")
    (tmp_path / "not-a-layout").mkdir()
    with pytest.raises(ImageImportError, match="index.json"):
        store.import_path(tmp_path / "not-a-layout")
    (tmp_path / "junk.tar").write_bytes(b"this is not a tar")
    with pytest.raises(ImageImportError, match="neither"):
        store.import_path(tmp_path / "junk.tar")
    with pytest.raises(ImageNotFound, match="nginx"):
        store.config("nginx:1.27")


@pytest.mark.parametrize("entries", [
    {"../escaped.txt": b"out"},  # a name that climbs out of the root filesystem
    {"link": "/tmp", "link/escaped.txt": b"out"},  # through a symlink the same layer made
    {"../../../../.wh.escaped.txt": b""},  # a whiteout that would delete a file outside
], ids=["dotdot", "symlink", "whiteout"])
def test_a_layer_that_writes_outside_the_image_is_refused_and_writes_nothing_outside(tmp_path, entries):
    store = ImageStore(tmp_path / "images")
    layout = _oci_layout(tmp_path / "layout", [_layer(entries)], "lab.local/evil:1", {"Cmd": ["true"]})
    (tmp_path / "escaped.txt").write_text("keep me")
    with pytest.raises(ImageImportError, match="leaves|safely"):
        store.import_path(layout)
    assert (tmp_path / "escaped.txt").read_text() == "keep me"
    assert not Path("/tmp/escaped.txt").exists()
