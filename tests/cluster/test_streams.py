"""`kubectl exec`, `kubectl attach`, `kubectl run -i/-it` and `kubectl port-forward` against a real
control plane and a real kubelet with runc, kubectl running inside lab host h1 (KubeletLab): exit
codes reach kubectl's own exit code, stdin reaches the command, a terminal gets kubectl's window
size, a container that is not running is refused with a message, an old kubectl is told which
protocols are served, attach shows a running container's new output and feeds its stdin, `kubectl
run -it --rm` gives a shell and removes the pod, and port-forward carries HTTP to a busybox httpd
in the pod for a Python socket in h1."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from tests.cluster.kubelet_lab import KubeletLab
from tests.cluster.test_kubelet import HTTPD, _runtime_missing, pod, ready

pytestmark = pytest.mark.cluster
MINORS = "/usr/lib/google-cloud-sdk/bin/kubectl.1.{}"


def minor(number: int) -> str:
    binary = MINORS.format(number)
    if not os.path.exists(binary):
        pytest.skip(f"{binary} is not installed")
    return binary


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = _runtime_missing()
    if missing:
        pytest.skip(missing)
    cluster = KubeletLab.create(tmp_path_factory.mktemp("streams-cluster"), workers=1, runtime="runc")
    try:
        cluster.apply(pod("web", None, {"name": "web", "image": "busybox", "command": ["sh", "-c", HTTPD]}))
        cluster.apply(pod("stuck", None, {"name": "main", "image": "busybox", "command": ["sleep", "3600"]},
                          initContainers=[{"name": "wait", "image": "busybox", "command": ["sleep", "3600"]}]))
        cluster.apply(pod("clock", None, {"name": "clock", "image": "busybox", "command": ["sh", "-c", CLOCK]}))
        cluster.wait(lambda: ready(cluster.pod("web")) and ready(cluster.pod("clock")), 90, "pods web, clock Ready")
        yield cluster
    finally:
        cluster.close()


def test_exec_returns_the_commands_exit_code_and_both_outputs(cluster):
    result = cluster.kubectl("exec", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert result.returncode == 3, result.stderr
    assert result.stdout == "out\n" and "err" in result.stderr
    assert cluster.kubectl("exec", "web", "--", "true").returncode == 0


def test_exec_feeds_stdin_and_the_command_sees_its_end(cluster):
    result = cluster.kubectl("exec", "-i", "web", "--", "sh", "-c", "cat; echo done", input="hi\nthere\n")
    assert result.stdout == "hi\nthere\ndone\n"


class Terminal:
    """kubectl on a pseudo-terminal of 33 rows and 111 columns, as a person types at it."""

    def __init__(self, cluster, *args: str) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
        self.process = subprocess.Popen(cluster.kubectl_argv(*args), stdin=slave, stdout=slave, stderr=slave,
                                        env=cluster.kubectl_env(), start_new_session=True)
        os.close(slave)
        self.output = b""

    def read_until(self, text: bytes | None, timeout_s: float = 30) -> str:
        """The screen so far once `text` is on it (None: until kubectl ends); fails on a timeout."""
        deadline = time.monotonic() + timeout_s
        while text is None or text not in self.output:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} within {timeout_s} s; the screen: {self.output!r}")
            ready_fds, _, _ = select.select([self.master], [], [], 0.5)
            if ready_fds:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                self.output += chunk
            elif self.process.poll() is not None:
                break
        if text is not None and text not in self.output:
            raise AssertionError(f"kubectl ended (status {self.process.poll()}) before {text!r}; the screen: "
                                 f"{self.output!r}")
        return self.output.decode(errors="replace")

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def shell(self, exchanges: list[tuple[str, bytes]], leave: str = "exit") -> str:
        """At kubectl's prompt, type each line and wait for its answer; then leave, and the screen
        once kubectl ends."""
        self.read_until(b"If you don't see a command prompt", timeout_s=90)
        for line, answer in exchanges:
            self.type(line + "\r")
            self.read_until(answer)
        self.type(leave + "\r")
        return self.read_until(None, timeout_s=60)

    def close(self) -> int:
        try:
            return self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            os.close(self.master)


def test_exec_with_a_tty_has_kubectls_window_size(cluster):
    """kubectl -t needs a terminal: it runs on a pseudo-terminal of 33 rows and 111 columns, and
    sends that size as a resize; `stty size` inside reads it back."""
    terminal = Terminal(cluster, "exec", "-it", "web", "--", "sh", "-c", "stty size; tty")
    try:
        text = terminal.read_until(None)
    finally:
        code = terminal.close()
    assert code == 0, text
    assert "33 111" in text and "/dev/pts/" in text, text


def test_exec_into_a_container_that_is_not_running_says_so(cluster):
    result = cluster.kubectl("exec", "stuck", "-c", "main", "--", "true", check=False)
    assert result.returncode != 0
    assert "container main is not running in pod stuck" in result.stderr, result.stderr


@pytest.mark.parametrize("number", [30, 31, 33])
def test_exec_exit_codes_and_stdin_with_each_websocket_minor(cluster, number):
    binary = minor(number)
    result = cluster.kubectl("exec", "-i", "web", "--", "sh", "-c", "cat; exit 7", input="x\n", binary=binary,
                             check=False)
    assert (result.returncode, result.stdout) == (7, "x\n"), result.stderr


def test_exec_by_a_kubectl_that_speaks_only_spdy_is_told_the_protocols_served(cluster):
    result = cluster.kubectl("exec", "web", "--", "true", binary=minor(28), check=False)
    assert result.returncode != 0
    assert "v5.channel.k8s.io" in result.stderr and "WebSocket" in result.stderr, result.stderr


CLOCK = "i=0; while true; do i=$((i+1)); echo tick $i $(date); sleep 1; done"


def _ticks(text: str) -> list[int]:
    return [int(line.split()[1]) for line in text.splitlines() if line.startswith("tick ")]


def test_attach_shows_a_running_containers_new_output_and_leaving_does_not_stop_it(cluster):
    before = max(_ticks(cluster.kubectl("logs", "clock").stdout))
    attach = subprocess.Popen(cluster.kubectl_argv("attach", "clock"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=cluster.kubectl_env(), text=True)
    try:
        lines = [attach.stdout.readline() for _ in range(3)]
    finally:
        attach.terminate()
        attach.wait(timeout=10)
    ticks = _ticks("".join(lines))
    assert len(ticks) == 3 and ticks[0] >= before and ticks == list(range(ticks[0], ticks[0] + 3)), lines
    time.sleep(1.5)
    assert max(_ticks(cluster.kubectl("logs", "clock").stdout)) > ticks[-1]
    assert cluster.pod("clock")["status"]["containerStatuses"][0]["restartCount"] == 0


def test_run_it_rm_gives_a_shell_that_answers_and_the_pod_is_removed(cluster):
    terminal = Terminal(cluster, "run", "-it", "--rm", "shell", "--image=busybox", "--restart=Never", "--", "sh")
    try:
        # kubectl attach sends its size plus one, then its size (to force a redraw), from a goroutine
        # of its own: a line typed at once can overtake the second (`stty size` said 34 112 once)
        text = terminal.shell([("echo ready-$((1+1))", b"ready-2"), ("stty size; echo answer-$((6*7))", b"answer-42")])
    finally:
        code = terminal.close()
    assert code == 0, text
    assert "33 111" in text and 'pod "shell" deleted' in text, text
    cluster.wait(lambda: cluster.pod("shell") is None, 30, "pod shell gone")


def test_debug_gives_a_shell_beside_a_running_container_sharing_its_processes_and_network(cluster):
    """kubectl debug -it --target: an ephemeral container in the pod's network, in the target's
    PID namespace; when its shell ends the pod's own container runs on, untouched."""
    terminal = Terminal(cluster, "debug", "-it", "web", "--image=busybox", "--target=web", "-c", "debugger",
                        "--", "sh")
    try:
        text = terminal.shell([("echo ready-$((1+1))", b"ready-2"),
                               ("echo seen-$(ps -o args | grep -c '[h]ttpd -f'); wget -qO- localhost:8080",
                                b"hello-from-web")], leave="exit 3")
    finally:
        terminal.close()
    assert "seen-1" in text and "hello-from-web" in text, text

    def debugger_state() -> dict:
        statuses = (cluster.pod("web").get("status") or {}).get("ephemeralContainerStatuses") or [{}]
        return statuses[0].get("state") or {}
    cluster.wait(lambda: "terminated" in debugger_state(), 30, "the debugger container ended")
    assert debugger_state()["terminated"]["exitCode"] == 3
    status = cluster.pod("web")["status"]
    assert status["containerStatuses"][0]["restartCount"] == 0 and "running" in status["containerStatuses"][0]["state"]
    assert "ready-2" in cluster.kubectl("logs", "web", "-c", "debugger").stdout


def test_debug_node_runs_a_pod_in_the_nodes_network_with_its_root_and_a_quick_one_says_no_false_reason(cluster):
    """kubectl debug node/NAME: a pod on that node with the host's network and / at /host. A
    command that ends at once ends before kubectl attaches, while the pod's status still says
    running: kubectl falls back from the refused WebSocket to SPDY, and then to the logs. The
    warning it prints must give the kubelet's reason, not "SPDY is not supported"."""
    node = cluster.kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}").stdout
    result = cluster.kubectl("debug", f"node/{node}", "-i", "--image=busybox", "--profile=general", "--",
                             "sh", "-c", "test -d /host/proc && echo root-at-host; ps -o args | grep -q '[k]ubelet' "
                             "&& echo sees-kubelet; ip -o link | grep -c veth", timeout=120)
    lines = result.stdout.splitlines()
    assert "root-at-host" in lines and int(lines[-1]) >= 1, result  # the node's veths: its network
    assert "sees-kubelet" in lines, result  # hostPID: the node's processes
    assert "SPDY" not in result.stderr, result.stderr


def test_debug_copy_to_with_shared_processes_sees_the_copied_containers_processes(cluster):
    """kubectl debug --copy-to --share-processes: a copy of the pod with shareProcessNamespace and
    one container more, which sees the copied container's processes (none of them PID 1)."""
    cluster.kubectl("debug", "web", "--copy-to=web-copy", "--share-processes", "--container=dbg", "--image=busybox",
                    "--", "sleep", "3600")
    cluster.wait(lambda: ready(cluster.pod("web-copy")), 90, "pod web-copy Ready")
    copy = cluster.pod("web-copy")
    assert copy["spec"]["shareProcessNamespace"] is True
    assert [c["name"] for c in copy["spec"]["containers"]] == ["web", "dbg"]
    seen = cluster.kubectl("exec", "web-copy", "-c", "dbg", "--", "ps", "-o", "pid,args").stdout
    processes = dict(line.strip().split(None, 1) for line in seen.splitlines()[1:])
    assert "sleep 3600" in processes.values() and "httpd -f -p 8080 -h /www" in processes.values(), seen
    assert processes.get("1") not in ("sleep 3600", "httpd -f -p 8080 -h /www"), seen
    cluster.kubectl("delete", "pod", "web-copy", timeout=120)


def test_run_i_rm_feeds_a_pipe_to_the_container_and_ends_with_its_end(cluster):
    result = cluster.kubectl("run", "-i", "--rm", "echo", "--image=busybox", "--restart=Never", "--", "cat",
                             input="hello\nworld\n", timeout=120)
    assert "hello\nworld\n" in result.stdout and 'pod "echo" deleted' in result.stdout, result
    cluster.wait(lambda: cluster.pod("echo") is None, 30, "pod echo gone")


def test_run_i_reports_the_containers_exit_code(cluster):
    result = cluster.kubectl("run", "-i", "--rm", "fail", "--image=busybox", "--restart=Never", "--", "sh", "-c",
                             "read word; echo $word; exit 3", input="bye\n", timeout=120, check=False)
    assert result.returncode == 3 and "bye" in result.stdout, result
    cluster.wait(lambda: cluster.pod("fail") is None, 30, "pod fail gone")


def test_attach_to_a_container_that_is_not_running_says_so(cluster):
    result = cluster.kubectl("attach", "stuck", "-c", "main", check=False, timeout=30)
    assert result.returncode != 0
    assert "container main not found in pod stuck_default" in result.stderr, result.stderr


FETCH = """
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as s:
    s.sendall(b"GET /index.html HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n")
    data = b""
    while chunk := s.recv(65536):
        data += chunk
print(data.decode())
"""


@pytest.mark.parametrize("number", [None, 31, 33])
def test_port_forward_carries_http_to_the_pod_for_a_socket_beside_kubectl(cluster, number):
    binary = minor(number) if number else "kubectl"
    port = 18080 + (number or 0)
    forward = subprocess.Popen(cluster.kubectl_argv("port-forward", "pod/web", f"{port}:8080", binary=binary),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cluster.kubectl_env(), text=True)
    try:
        line = forward.stdout.readline()
        assert "Forwarding from 127.0.0.1" in line, line + forward.stderr.read()
        for _ in range(3):  # each connection is a new pair of SPDY streams in the same session
            fetched = cluster.run_in("h1", sys.executable, "-c", FETCH, str(port), timeout=30)
            assert fetched.returncode == 0, fetched.stderr
            assert "200 OK" in fetched.stdout and "hello-from-web" in fetched.stdout, fetched.stdout
    finally:
        forward.terminate()
        try:
            forward.wait(timeout=10)
        except subprocess.TimeoutExpired:
            forward.kill()
            forward.wait()


def test_port_forward_by_a_kubectl_that_speaks_only_spdy_is_told_the_protocols_served(cluster):
    result = cluster.kubectl("port-forward", "pod/web", "18099:8080", binary=minor(30), check=False, timeout=30)
    assert result.returncode != 0
    assert "SPDY/3.1+portforward.k8s.io" in result.stderr, result.stderr
