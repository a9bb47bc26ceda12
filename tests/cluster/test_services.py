"""Services on a real lab (issue 12's "Must show", root): `ketch up` with one control plane and two
workers, each worker running a runc kubelet and `ketch proxy`, the cluster DNS behind kube-dns.
Manifests go in with kubectl; pods are busybox (or the built-in `host` image where a test needs
python); requests come from client pods, from the nodes, and from cp-1, a host that runs no pods.

Every test runs on a lab whose proxies program nftables, then again on a second lab (after the
first is gone) whose proxies program iptables.

Requests from a node go to the ClusterIP (a node has no cluster DNS); requests from a pod use the
Service's name, as a user's would.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from itertools import count

import pytest

from orchestrator.lab import cluster as lab_cluster
from orchestrator.lab import config as cluster_config
from orchestrator.lab import fabric
from orchestrator.lab.cluster_chaos import ClusterFault, LabFaults
from orchestrator.lab.components import Paths
from tests.cluster.ketch_lab import ketch_up, wait_for

pytestmark = pytest.mark.cluster

WORKERS = ("worker-1", "worker-2")
REQUESTS = 300          # per client in the balance test (the figure)
FAIR_SHARE_BOUND = 0.4  # each of 3 backends gets within +-40% of a third: 60..140 of 300 (about 5 sigma)
REMOVAL_BOUND_S = 1.0   # the issue: no new connection reaches a removed pod 1 s after the EndpointSlice change
UDP_RECOVERY_BOUND_S = 3.0  # the new UDP backend answers the old client socket this soon after the old
                            # one stopped serving (without conntrack cleanup: never)
READY_S = 90.0

@pytest.fixture(scope="module", params=["nftables", "iptables"])
def lab(request, tmp_path_factory):
    """A lab whose proxies run in request.param mode. Tests are grouped by mode, so the nftables lab
    is down before the iptables lab comes up: never two labs at once on the shared machine."""
    directory = tmp_path_factory.mktemp(f"services-{request.param}") / "k"
    config = cluster_config.lab(1, len(WORKERS), directory, netns=True, proxy_mode=request.param)
    config_file = directory.parent / "cluster.toml"
    config_file.write_text(cluster_config.render(config))
    with ketch_up(directory, "--config", str(config_file)) as (state, _):
        assert {h.name for h in state.config().workers} == set(WORKERS)
        apply(state, *web_objects())
        wait_for(lambda: ready_pods(state, "web", 3), READY_S, "3 ready web pods")
        yield state


# --- manifests -----------------------------------------------------------------------------------

# A web server that answers its pod's name on /, is ready while /ready exists, and turns itself
# unready on GET /cgi-bin/unready (busybox httpd runs CGI; there is no kubectl exec in Ketch yet).
# It ignores SIGTERM, so a pod being deleted keeps answering until its grace period ends: a
# request that reaches a removed pod then shows up as its name, not as a refused connection.
WEB_SCRIPT = """mkdir -p /w/cgi-bin
hostname > /w/index.html
echo ok > /w/ready
cat > /w/cgi-bin/unready <<'EOF'
#!/bin/sh
rm -f /w/ready
printf 'Content-Type: text/plain\\r\\n\\r\\nunready\\n'
EOF
chmod +x /w/cgi-bin/unready
trap '' TERM
httpd -f -p 80 -h /w &
"""
SERVE_FOREVER = "while true; do wait; done\n"  # `wait` returns early on a trapped signal
# The same server, also asking its own Service once a second: does it ever land on itself?
HAIRPIN_SCRIPT = WEB_SCRIPT + "while true; do echo \"got $(timeout 2 wget -qO- http://hairpin)\"; sleep 0.3; done\n"
UDP_ECHO = """import socket
server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind(("", 9999))
name = socket.gethostname().encode()
while True:
    _, peer = server.recvfrom(2048)
    server.sendto(name, peer)
"""


def deployment(name: str, replicas: int, container: dict, *, grace_s: int = 30, node: str | None = None) -> dict:
    spec = {"containers": [{"name": name, **container}], "terminationGracePeriodSeconds": grace_s,
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                           "whenUnsatisfiable": "DoNotSchedule",
                                           "labelSelector": {"matchLabels": {"app": name}}}]}
    if node:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}


def web_container(script: str = WEB_SCRIPT + SERVE_FOREVER) -> dict:
    return {"image": "busybox", "command": ["sh", "-c", script], "ports": [{"containerPort": 80}],
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 80}, "periodSeconds": 1,
                               "failureThreshold": 1}}


def service(name: str, app: str, port: int = 80, protocol: str = "TCP", **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": app}, "ports": [{"port": port, "protocol": protocol}], **spec}}


def web_objects() -> list[dict]:
    return [deployment("web", 3, web_container()), service("web", "web"),
            service("web-headless", "web", clusterIP="None")]


# --- talking to the lab ----------------------------------------------------------------------------

def kubectl(state, *args: str, timeout: float = 60, input: str | None = None) -> str:
    result = lab_cluster.kubectl(state, *args, timeout=timeout, input=input)
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result.stdout


def apply(state, *objects: dict) -> None:
    kubectl(state, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


def pods(state, app: str) -> list[dict]:
    return json.loads(kubectl(state, "get", "pods", "-l", f"app={app}", "-o", "json"))["items"]


def ready_pods(state, app: str, replicas: int) -> dict[str, dict] | None:
    """name -> pod once exactly `replicas` pods are ready and not deleting and the Service's
    EndpointSlices list exactly their addresses as ready."""
    ready = {p["metadata"]["name"]: p for p in pods(state, app) if p["metadata"].get("deletionTimestamp") is None
             and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])}
    if len(ready) != replicas or set(ready_endpoints(state, app)) != set(ready):
        return None
    return ready


def ready_endpoints(state, service_name: str) -> dict[str, str]:
    """pod name -> address of the ready endpoints in the Service's EndpointSlices."""
    slices = json.loads(kubectl(state, "get", "endpointslices", "-l", f"kubernetes.io/service-name={service_name}",
                                "-o", "json"))["items"]
    return {e["targetRef"]["name"]: e["addresses"][0] for s in slices for e in s.get("endpoints") or []
            if (e.get("conditions") or {}).get("ready") and e.get("targetRef")}


def cluster_ip(state, name: str) -> str:
    return kubectl(state, "get", "service", name, "-o", "jsonpath={.spec.clusterIP}").strip()


_pod_numbers = count(1)


def client_pod(state, node: str, script: str, image: str = "busybox", timeout_s: float = 120) -> str:
    """Run a one-shot pod on `node`, wait until it has finished, return its log."""
    name = f"client-{next(_pod_numbers)}"
    apply(state, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                  "spec": {"nodeName": node, "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                           "containers": [{"name": "client", "image": image, "command": ["sh", "-c", script]}]}})

    def finished() -> str:
        return kubectl(state, "get", "pod", name, "-o", "jsonpath={.status.phase}") in ("Succeeded", "Failed")
    wait_for(finished, timeout_s, f"client pod {name} on {node} to finish", interval_s=0.5)
    log = kubectl(state, "logs", name)
    kubectl(state, "delete", "pod", name, "--wait=false")
    return log


def in_host(state, host: str, script: str, timeout_s: float = 120) -> str:
    """A busybox shell script run on a lab host (a node or cp-1) outside any pod."""
    result = lab_cluster.run_in_host(state, host, ["busybox", "sh", "-c", script], timeout=timeout_s)
    return result.stdout


def get_loop(url: str, times: int, prefix: str = "") -> str:
    """A shell loop printing one line per request: the answer, or FAIL. (Debian's busybox wget
    crashes on -T, hence `timeout`.)"""
    return (f"for i in $(seq {times}); do {prefix}timeout 3 {prefix}wget -qO- {url} || echo FAIL; done")


def answer_addresses(nslookup_output: str) -> list[str]:
    """The IPv4 records busybox nslookup printed (the server's own Address line has a :53)."""
    return re.findall(r"^Address:\s*(\d+\.\d+\.\d+\.\d+)\s*$", nslookup_output, re.M)


def answers(text: str) -> Counter:
    return Counter(line.strip() for line in text.splitlines() if line.strip())


class HostProcess:
    """A python program running on a lab host for the length of a `with` block, printing lines
    `<unix time> <what happened>`; lines are collected as they come."""

    def __init__(self, state, host: str, program: str, *args: str) -> None:
        argv = fabric.enter(state.hosts[host]) + [sys.executable, "-u", "-c", program, *args]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[tuple[float, str]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            stamp, _, what = line.strip().partition(" ")
            try:
                self.lines.append((float(stamp), what))
            except ValueError:
                self.lines.append((time.time(), line.strip()))  # a traceback: kept for the failure message

    def since(self, when: float) -> list[tuple[float, str]]:
        return [(t, what) for t, what in list(self.lines) if t >= when]

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
        self.reader.join(timeout=10)


# New TCP connection after new TCP connection, each answered by a busybox httpd with its pod's name.
HTTP_CLIENT = """import socket, sys, time
ip, port = sys.argv[1], int(sys.argv[2])
while True:
    started = time.time()
    try:
        with socket.create_connection((ip, port), timeout=2) as s:
            s.settimeout(2)
            s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
            body = b""
            while chunk := s.recv(4096):
                body += chunk
        answer = body.split(b"\\r\\n\\r\\n", 1)[-1].decode().strip() or "EMPTY"
    except OSError as err:
        answer = "FAIL:" + type(err).__name__
    print(f"{started:.3f} {answer}", flush=True)
    time.sleep(0.01)
"""
# One TCP connection kept open, a line echoed every 0.1 s; stops at the first failure.
STREAM_CLIENT = """import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
s.settimeout(2)
for n in range(10**9):
    try:
        s.sendall(b"%d\\n" % n)
        echoed = s.recv(64).strip()
        assert echoed == b"%d" % n, echoed
    except (OSError, AssertionError) as err:
        print(f"{time.time():.3f} FAIL {n} {err!r}", flush=True)
        break
    print(f"{time.time():.3f} ok {n}", flush=True)
    time.sleep(0.1)
"""
# One UDP socket on a fixed source port (so a stale conntrack entry would keep it pinned to a gone
# backend), a datagram every 0.2 s, the answering pod's name or "timeout".
UDP_CLIENT = """import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("", 40999))
s.settimeout(0.5)
while True:
    s.sendto(b"ping", (sys.argv[1], int(sys.argv[2])))
    try:
        answer = s.recv(256).decode()
    except OSError:
        answer = "timeout"
    print(f"{time.time():.3f} {answer}", flush=True)
    time.sleep(0.2)
"""


def _named(endpoints: list[dict], condition: str) -> frozenset[str]:
    return frozenset(e["targetRef"]["name"] for e in endpoints if (e.get("conditions") or {}).get(condition))


class SliceWatch:
    """`kubectl get endpointslices -w -o json` for one Service: the time each change was seen, the
    pods it lists as ready and those it lists as serving (a terminating pod can still serve).
    (kubectl 1.32 ends a watch printed with a jsonpath `range` at the first event, with status 0;
    JSON output keeps watching.)"""

    def __init__(self, state, service_name: str) -> None:
        self.process = subprocess.Popen(["kubectl", "get", "endpointslices", "-w", "-l",
                                         f"kubernetes.io/service-name={service_name}", "-o", "json"],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                        env=lab_cluster.kubectl_env(state))
        self.events: list[tuple[float, frozenset[str], frozenset[str]]] = []  # (time, ready, serving)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        text = ""
        for line in self.process.stdout:  # one pretty-printed object per event, closed by "}" alone
            text += line
            if line.rstrip("\n") == "}":
                endpoints = json.loads(text).get("endpoints") or []
                text = ""
                self.events.append((time.time(), _named(endpoints, "ready"), _named(endpoints, "serving")))

    def first(self, predicate, timeout_s: float, description: str, serving: bool = False) \
            -> tuple[float, frozenset[str]]:
        """The first event whose ready pods (serving pods) satisfy predicate: (time, those pods)."""
        def found() -> tuple[float, frozenset[str]] | None:
            for t, ready, serves in list(self.events):
                pods = serves if serving else ready
                if predicate(pods):
                    return t, pods
            return None
        return wait_for(found, timeout_s, description, interval_s=0.05)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


# --- the tests --------------------------------------------------------------------------------------

def test_a_cluster_ip_spreads_requests_from_pods_and_nodes_over_three_pods_on_two_hosts(lab):
    web = ready_pods(lab, "web", 3)
    assert {p["spec"]["nodeName"] for p in web.values()} == set(WORKERS), "the 3 web pods sit on both workers"
    ip = cluster_ip(lab, "web")
    results: dict[str, str] = {}

    def from_pod(node: str) -> None:
        results[f"pod on {node}"] = client_pod(lab, node, get_loop("http://web", REQUESTS))

    def from_node(node: str) -> None:
        results[f"node {node}"] = in_host(lab, node, get_loop(f"http://{ip}", REQUESTS, prefix="busybox "))
    threads = [threading.Thread(target=f, args=(node,)) for node in WORKERS for f in (from_pod, from_node)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    low, high = REQUESTS / 3 * (1 - FAIR_SHARE_BOUND), REQUESTS / 3 * (1 + FAIR_SHARE_BOUND)
    for client in sorted(results):
        counts = answers(results[client])
        print(f"{lab.config().proxy_mode} {client}: {dict(sorted(counts.items()))}")
        assert set(counts) == set(web), f"{client}: answers other than the 3 web pods: {counts}"
        assert sum(counts.values()) == REQUESTS
        assert all(low <= n <= high for n in counts.values()), f"{client}: outside {low:.0f}..{high:.0f}: {counts}"
    assert len(results) == 2 * len(WORKERS)


def test_names_resolve_from_a_pod_and_a_headless_service_gives_the_pods(lab):
    web = ready_pods(lab, "web", 3)
    ip = cluster_ip(lab, "web")
    log = client_pod(lab, "worker-1", "echo short $(timeout 3 wget -qO- http://web); "
                     "echo full $(timeout 3 wget -qO- http://web.default.svc.cluster.local); "
                     "echo ==; nslookup web; echo ==; nslookup web-headless; echo ==")
    lines = log.splitlines()
    assert lines[0].split()[1:] and lines[0].split()[1] in web, log
    assert lines[1].split()[1:] and lines[1].split()[1] in web, log
    _, service_answer, headless_answer, _ = log.split("==")
    assert set(answer_addresses(service_answer)) == {ip}, service_answer
    assert set(answer_addresses(headless_answer)) == {p["status"]["podIP"] for p in web.values()}, headless_answer


def test_a_statefulset_pod_has_a_stable_dns_name_under_its_headless_service(lab):
    """web-0.web.default.svc.cluster.local, issue 14: each StatefulSet pod's own name resolves, and
    follows the pod when it is replaced (same name, the new pod's address)."""
    apply(lab, service("db", "db", clusterIP="None"),
          {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"}, "spec": {
              "serviceName": "db", "replicas": 2, "selector": {"matchLabels": {"app": "db"}},
              "template": {"metadata": {"labels": {"app": "db"}}, "spec": {
                  "terminationGracePeriodSeconds": 1, "containers": [{"name": "db", **web_container()}]}}}})
    try:
        db = wait_for(lambda: ready_pods(lab, "db", 2), READY_S, "2 ready db pods")
        log = client_pod(lab, "worker-1", "nslookup db-0.db.default.svc.cluster.local; echo ==; "
                         "echo got $(timeout 3 wget -qO- http://db-1.db)")
        answer, fetched = log.split("==")
        assert answer_addresses(answer) == [db["db-0"]["status"]["podIP"]], answer
        assert fetched.split() == ["got", "db-1"], log

        kubectl(lab, "delete", "pod", "db-0", "--wait=false")  # kubernetes#135562: see tests/control
        back = wait_for(lambda: (lambda ready: ready if ready and ready["db-0"]["metadata"]["uid"] !=
                                 db["db-0"]["metadata"]["uid"] else None)(ready_pods(lab, "db", 2)),
                        READY_S, "a new db-0 ready")
        log = client_pod(lab, "worker-2", "nslookup db-0.db.default.svc.cluster.local")
        assert answer_addresses(log) == [back["db-0"]["status"]["podIP"]], log
    finally:
        kubectl(lab, "delete", "statefulset,service", "db", "--wait=false")


API_FROM_A_POD = """cd /var/run/secrets/kubernetes.io/serviceaccount
TOKEN=$(cat token)
echo "namespace=$(cat namespace) api=$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"
md5sum ca.crt
for ns in default kube-system; do
  echo "== $ns"
  timeout 10 wget --no-check-certificate --header "Authorization: Bearer $TOKEN" -O- \\
    https://kubernetes.default.svc/api/v1/namespaces/$ns/pods 2>&1
  echo
done
"""


def test_a_pod_lists_pods_of_its_namespace_with_its_token_and_is_refused_elsewhere(lab):
    log = client_pod(lab, "worker-1", API_FROM_A_POD)
    head, own, other = log.split("\n== ")
    ca = (Paths(lab.config().directory).pki / "ca.crt").read_bytes()
    assert f"namespace=default api={lab.config().api_service_ip}:443" in head, log
    assert hashlib.md5(ca).hexdigest() in head, log  # the cluster's CA, from kube-root-ca.crt
    assert "{" in own, log
    listed = json.loads(own[own.index("{"):own.rindex("}") + 1])
    assert listed["kind"] == "PodList" and any(p["metadata"]["name"].startswith("web-") for p in listed["items"])
    assert any(p["metadata"]["name"].startswith("client-") for p in listed["items"]), log  # itself
    # busybox prints the status line; Hypercorn sends no reason phrase after the code
    assert "wget: server returned error: HTTP/1.1 403" in other, log


def _removal_after(lab, app: str, change, final) -> float:
    """Run HTTP_CLIENT on worker-1 against the app's Service while `change` happens, until the
    EndpointSlice's ready pods satisfy `final`; return the longest time from a pod leaving the
    slice's ready endpoints to the last new connection that still reached it (<= 0: none did)."""
    ip = cluster_ip(lab, app)
    with SliceWatch(lab, app) as watch, HostProcess(lab, "worker-1", HTTP_CLIENT, ip, "80") as client:
        _, before = watch.first(lambda ready: len(ready) == 3, 30, f"the {app} slice with 3 ready pods")
        wait_for(lambda: {a for _, a in client.lines} >= before, 30, f"the client reaching all 3 {app} pods",
                 interval_s=0.1)
        change()
        settled_at, after = watch.first(final, 60, f"the {app} slice to drop pods")
        wait_for(lambda: client.since(settled_at + REMOVAL_BOUND_S + 2), 30, "2 s more of requests", interval_s=0.1)
    removed_at = {pod: next(t for t, ready, _ in watch.events if pod not in ready) for pod in before - after}
    latencies = {pod: max([t - removed_at[pod] for t, answer in client.lines if answer == pod]) for pod in removed_at}
    failed = [(t, answer) for t, answer in client.lines if answer not in before]
    assert not failed, f"requests not answered by a {app} pod: {failed[:5]}"
    for pod, latency_s in latencies.items():
        print(f"{lab.config().proxy_mode} {app}: last new connection to {pod} {latency_s:+.3f} s after it left the "
              f"EndpointSlice; {len(client.since(removed_at[pod]))} requests after that")
    return max(latencies.values())


def test_scaling_down_stops_new_connections_to_removed_pods_within_a_second(lab):
    apply(lab, deployment("shrink", 3, web_container(), grace_s=20), service("shrink", "shrink"))
    wait_for(lambda: ready_pods(lab, "shrink", 3), READY_S, "3 ready shrink pods")
    latency_s = _removal_after(lab, "shrink", lambda: kubectl(lab, "scale", "deployment", "shrink", "--replicas=1"),
                               lambda ready: len(ready) == 1)
    assert latency_s <= REMOVAL_BOUND_S
    kubectl(lab, "delete", "deployment", "shrink", "--wait=false")


def test_a_failing_readiness_probe_takes_a_pod_out_within_a_second(lab):
    apply(lab, deployment("probe", 3, web_container()), service("probe", "probe"))
    pods_by_name = wait_for(lambda: ready_pods(lab, "probe", 3), READY_S, "3 ready probe pods")
    victim, pod = sorted(pods_by_name.items())[0]

    def make_unready() -> None:
        assert "unready" in in_host(lab, "worker-1", f"busybox wget -qO- http://{pod['status']['podIP']}/cgi-bin/unready")
    latency_s = _removal_after(lab, "probe", make_unready, lambda ready: len(ready) == 2 and victim not in ready)
    assert latency_s <= REMOVAL_BOUND_S
    status = json.loads(kubectl(lab, "get", "pod", victim, "-o", "json"))["status"]
    assert status["phase"] == "Running" and not status["containerStatuses"][0]["ready"]


def test_a_node_port_answers_on_every_node_from_a_host_without_pods_and_local_policy_only_where_pods_are(lab):
    web = ready_pods(lab, "web", 3)
    apply(lab, service("web-nodeport", "web", type="NodePort"),
          deployment("only2", 1, web_container(), node="worker-2"),
          service("only2", "only2", type="NodePort", externalTrafficPolicy="Local"))
    wait_for(lambda: ready_pods(lab, "only2", 1), READY_S, "the only2 pod on worker-2")
    config = lab.config()
    for name, expect in (("web-nodeport", set(web)), ("only2", None)):
        port = kubectl(lab, "get", "service", name, "-o", "jsonpath={.spec.ports[0].nodePort}").strip()
        for worker in config.workers:
            url = f"http://{worker.address}:{port}"
            if expect is None and worker.name != "worker-2":
                wait_for(lambda url=url: _dropped(lab, url), 30, f"{url} to drop (no local endpoint)")
                continue
            wanted = expect or set(ready_pods(lab, "only2", 1))

            def reached(url=url, wanted=wanted) -> Counter | None:
                got = answers(in_host(lab, "cp-1", get_loop(url, 10, prefix="busybox ")))
                return got if set(got) <= wanted else None
            got = wait_for(reached, 30, f"{url} from cp-1 to answer from {wanted}")
            assert sum(got.values()) == 10, f"{url} from cp-1: {got}"


def _dropped(lab, url: str) -> bool:
    """True when nothing answers and the connection is not refused either: the node knows the
    NodePort and drops it (kube-proxy's behaviour for externalTrafficPolicy Local with no local
    endpoint). Refused means the node has no rule for the port yet: False, to be asked again."""
    out = in_host(lab, "cp-1", f"busybox timeout 2 busybox wget -qO- {url} 2>&1; echo exit=$?")
    assert "only2-" not in out, f"{url}: answered with no local endpoint: {out}"
    return "refused" not in out and "exit=0" not in out


def test_a_pod_reaching_its_own_service_lands_on_itself_sometimes(lab):
    apply(lab, deployment("hairpin", 2, web_container(HAIRPIN_SCRIPT)), service("hairpin", "hairpin"))
    hairpin = wait_for(lambda: ready_pods(lab, "hairpin", 2), READY_S, "2 ready hairpin pods")

    def every_pod_reached_itself() -> bool:
        return all(f"got {name}" in kubectl(lab, "logs", name) for name in hairpin)
    wait_for(every_pod_reached_itself, 60, "each hairpin pod to be answered by itself through its Service")
    for name in hairpin:
        lines = [line.strip() for line in kubectl(lab, "logs", name).splitlines() if line.startswith("got")]
        # from the Service's first answer on (before that it may have had no ready endpoint: refused)
        served = lines[next(i for i, line in enumerate(lines) if line != "got"):]
        print(f"{lab.config().proxy_mode} {name}: {dict(answers(chr(10).join(served)))}")
        assert "got" not in served, f"{name}: requests through its own Service went unanswered: {served}"


def test_session_affinity_client_ip_pins_a_client_to_one_pod(lab):
    web = ready_pods(lab, "web", 3)
    apply(lab, service("web-sticky", "web", sessionAffinity="ClientIP"))
    ip = wait_for(lambda: cluster_ip(lab, "web-sticky"), 30, "a ClusterIP for web-sticky")
    from_pod = answers(client_pod(lab, "worker-1", get_loop("http://web-sticky", 60)))
    from_node = answers(in_host(lab, "worker-2", get_loop(f"http://{ip}", 60, prefix="busybox ")))
    for client, got in (("pod", from_pod), ("node", from_node)):
        assert len(got) == 1 and set(got) <= set(web) and sum(got.values()) == 60, f"{client}: {got}"


def test_a_service_without_endpoints_refuses_at_once(lab):
    apply(lab, service("nobody", "nobody"))
    ip = wait_for(lambda: cluster_ip(lab, "nobody"), 30, "a ClusterIP for nobody")
    script = "timeout 5 wget -qO- {url} 2>&1; echo exit=$?"
    from_pod = client_pod(lab, "worker-1", script.format(url="http://nobody"))
    from_node = in_host(lab, "worker-2", "busybox " + script.format(url=f"http://{ip}").replace("wget", "busybox wget"))
    for client, out in (("pod", from_pod), ("node", from_node)):
        # refused: wget reports it and exits 1; a hang would end in timeout's kill (exit 143)
        assert "Connection refused" in out and "exit=1" in out, f"{client}: {out}"


def test_a_udp_service_keeps_answering_after_its_pod_is_replaced(lab):
    apply(lab, deployment("udp", 1, {"image": "host", "command": ["python3", "-c", UDP_ECHO]}, grace_s=1),
          service("udp", "udp", port=9999, protocol="UDP"))
    old = next(iter(wait_for(lambda: ready_pods(lab, "udp", 1), READY_S, "a ready udp pod")))
    ip = cluster_ip(lab, "udp")
    with SliceWatch(lab, "udp") as watch, HostProcess(lab, "worker-1", UDP_CLIENT, ip, "9999") as client:
        wait_for(lambda: any(a == old for _, a in client.lines), 30, "the old udp pod to answer", interval_s=0.1)
        kubectl(lab, "delete", "pod", old, "--wait=false")
        ready_at, ready = watch.first(lambda ready: ready and old not in ready, 60, "a new ready udp pod")
        new = next(iter(ready))
        # The old pod serves until its grace period ends, and its flow may stay with it until then.
        gone_at, _ = watch.first(lambda serving: old not in serving, 60, f"{old} to stop serving", serving=True)
        replaced_at = max(ready_at, gone_at)
        answered = wait_for(lambda: next((t for t, a in client.since(replaced_at) if a == new), None),
                            30, f"{new} to answer the same client socket")
    recovery_s = answered - replaced_at
    around = [(round(t - replaced_at, 2), a) for t, a in client.lines if -1 <= t - replaced_at <= recovery_s]
    print(f"{lab.config().proxy_mode} udp: {new} answered the client socket {old} had answered {recovery_s:.3f} s "
          f"after {old} stopped serving and {new} was ready; around then: {around}")
    assert recovery_s <= UDP_RECOVERY_BOUND_S


def _drift(lab, ip: str) -> None:
    """Delete by hand, in worker-1's table, the rule that sends the web ClusterIP to its pods."""
    if lab.config().proxy_mode == "nftables":
        argv = ["nft", "delete", "element", "ip", "ketch-proxy", "service-ips", f"{{ {ip} . tcp . 80 }}"]
    else:
        rules = lab_cluster.run_in_host(lab, "worker-1", ["iptables-nft", "-t", "nat", "-S", "KUBE-SERVICES"]).stdout
        rule = next(line for line in rules.splitlines() if f"-d {ip}/32" in line and "--dport 80" in line)
        argv = ["sh", "-c", f"iptables-nft -t nat -D {rule.split(' ', 1)[1]}"]
    done = lab_cluster.run_in_host(lab, "worker-1", argv, timeout=30)
    assert done.returncode == 0, done.stderr


def test_a_killed_proxy_restarts_keeping_connections_and_repairing_a_hand_made_drift(lab, tmp_path):
    apply(lab, deployment("stream", 1, {"image": "busybox", "command": ["nc", "-ll", "-p", "7000", "-e", "cat"]},
                          grace_s=1),
          service("stream", "stream", port=7000))
    wait_for(lambda: ready_pods(lab, "stream", 1), READY_S, "a ready stream pod")
    web_ip, stream_ip = cluster_ip(lab, "web"), cluster_ip(lab, "stream")
    ask_web = f"busybox timeout 2 busybox wget -qO- http://{web_ip} || echo FAIL"
    faults = LabFaults(lab, tmp_path / "faults.jsonl")
    with HostProcess(lab, "worker-1", STREAM_CLIENT, stream_ip, "7000") as client:
        wait_for(lambda: client.lines, 30, "the stream client's first echo", interval_s=0.1)
        faults.inject(ClusterFault(0, 0, "kill", ("worker-1",), "proxy"))
        try:
            assert faults.killed, "the proxy on worker-1 was running and is killed"
            killed_at = time.time()
            _drift(lab, web_ip)
            assert in_host(lab, "worker-1", ask_web).strip() == "FAIL", "the drift stops new connections to web"
        finally:
            faults.heal()  # starts the proxy again with its own command line
        wait_for(lambda: in_host(lab, "worker-1", ask_web).strip() in ready_pods(lab, "web", 3), 30,
                 "the restarted proxy's first sync to repair the drift", interval_s=0.5)
        repaired = time.time()
        wait_for(lambda: client.since(repaired + 1), 10, "echoes after the repair", interval_s=0.1)
    failures = [line for line in client.lines if line[1].startswith("FAIL")]
    assert not failures, f"the open connection broke: {failures}"
    gaps = [b[0] - a[0] for a, b in zip(client.lines, client.lines[1:], strict=False)]
    print(f"{lab.config().proxy_mode} stream: {len(client.lines)} echoes, longest gap {max(gaps):.2f} s; proxy "
          f"down and repaired in {repaired - killed_at:.2f} s")
    assert client.since(killed_at) and len(client.since(repaired)) >= 5
