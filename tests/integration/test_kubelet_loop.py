"""The kubelet's loop end to end against a real control plane (kv + API server processes), with
a test runtime of plain host processes (tests/kubelet_host_runtime.py), so it runs without root:
registration and Lease, pods to Running/Ready with the status the Python client reads, restarts
with back-off and `kubectl logs --previous` through the API server's HTTPS proxy, graceful
deletion with preStop and SIGTERM, ImagePullBackOff, bad specs, adoption by a restarted
kubelet, an API server outage, `kubectl top`, and who may call the kubelet."""

from __future__ import annotations

import json
import shutil
import ssl
from contextlib import asynccontextmanager

import pytest
import trio

from kvstore.local_cluster import free_port
from orchestrator.client import kubeconfig
from orchestrator.client.api import LEASES, NODES, PODS, APIClient, APIStatusError, resource
from orchestrator.client.transport import Connection
from orchestrator.kubelet import server
from orchestrator.kubelet.kubelet import Kubelet, Settings
from orchestrator.kubelet.network import HostNetwork
from orchestrator.kubelet.nodeinfo import HostFacts
from orchestrator.lab.local_plane import LocalControlPlane
from orchestrator.pki import certs
from tests.kubelet_host_runtime import HostProcessRuntime

NODE = "kl-node"
TOKEN = "kubelet-test-token"


@pytest.fixture(scope="module")
def plane(tmp_path_factory):
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed (it is on every Ketch machine: /usr/bin/kubectl)")
    control = LocalControlPlane(tmp_path_factory.mktemp("kubelet-plane"), kv_members=1)
    try:
        control.start()
        certs.add_node(control.pki_dir, NODE)
        certs.kubelet_serving(control.pki_dir, NODE, "127.0.0.1")
        yield control
    finally:
        control.stop()


@pytest.fixture
def runtime(tmp_path):
    runtime = HostProcessRuntime(tmp_path / "runtime")
    yield runtime
    runtime.stop_everything()


@asynccontextmanager
async def kubelet_running(plane, runtime, tmp_path, port: int):
    access = kubeconfig.load(plane.pki_dir / f"node-{NODE}.kubeconfig")
    pki = plane.pki_dir
    async with APIClient(access, timeout_s=5) as api:
        facts = HostFacts(hostname=NODE, node_ip="127.0.0.1", cpus=2, memory_bytes=4 << 30,
                          ephemeral_storage_bytes=50 << 30, runtime_version="host://0", port=port)
        kubelet = Kubelet(api, runtime, HostNetwork("127.0.0.1"),
                          Settings(NODE, tmp_path / "kubelet", heartbeat_s=1.0, relist_s=0.3, housekeeping_s=2.0),
                          facts)
        context = server.server_context(str(pki / f"kubelet-{NODE}.crt"), str(pki / f"kubelet-{NODE}.key"),
                                        str(pki / "ca.crt"))
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve, server.KubeletServer(kubelet, server.Access({TOKEN})),
                                f"127.0.0.1:{port}", context)
            await nursery.start(kubelet.run)
            yield kubelet
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def admin(plane):
    async with APIClient(kubeconfig.load(plane.kubeconfig()), timeout_s=5) as api:
        yield api


async def wait_for(what, timeout_s: float = 30.0, interval_s: float = 0.2):
    with trio.fail_after(timeout_s):
        while True:
            value = await what()
            if value:
                return value
            await trio.sleep(interval_s)


def pod_body(name: str, *containers: dict, **spec) -> dict:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 5, "containers": list(containers), **spec}}


async def kubectl(plane, *args, check=True):
    return await trio.to_thread.run_sync(lambda: plane.kubectl(*args, check=check))


async def get_pod(api, name):
    try:
        return await api.get(PODS, "default", name)
    except APIStatusError:
        return None


def container_status(pod: dict) -> dict:
    return ((pod or {}).get("status") or {}).get("containerStatuses", [{}])[0]


async def test_a_pod_runs_ready_with_logs_events_metrics_and_a_node_that_heartbeats(plane, runtime, tmp_path):
    port = free_port()
    async with kubelet_running(plane, runtime, tmp_path, port), admin(plane) as api:
        await api.create(PODS, "default", pod_body("web", {
            "name": "c", "image": "busybox", "command": ["sh", "-c", "echo hello from $(POD_NAME); sleep 300"],
            "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1}}))

        async def ready():
            pod = await get_pod(api, "web")
            return pod if any(c["type"] == "Ready" and c["status"] == "True"
                              for c in (pod.get("status") or {}).get("conditions") or []) else None
        pod = await wait_for(ready)
        status = pod["status"]
        assert status["phase"] == "Running" and status["podIP"] == "127.0.0.1" and status["hostIP"] == "127.0.0.1"
        assert container_status(pod)["containerID"].startswith("host://") and container_status(pod)["started"]
        from kubernetes.client import ApiClient
        ApiClient().deserialize(json.dumps(pod), "V1Pod", "application/json")  # the Python client reads it

        node = await api.get(NODES, None, NODE)
        assert node["status"]["capacity"]["pods"] == "110" and node["status"]["daemonEndpoints"]["kubeletEndpoint"][
            "Port"] == port
        assert any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])
        lease = await api.get(LEASES, "kube-node-lease", NODE)
        renewed = lease["spec"]["renewTime"]
        await wait_for(lambda: _renewed_after(api, renewed), timeout_s=10)

        logs = await kubectl(plane, "logs", "web")
        assert logs.stdout == "hello from web\n"
        described = (await kubectl(plane, "describe", "pod", "web")).stdout
        for reason in ("Pulled", "Created", "Started"):
            assert reason in described, described
        top = await wait_for(lambda: _top(plane, "pod", "web"), timeout_s=30, interval_s=1)
        assert "web" in top and "Mi" in top
        assert NODE in await wait_for(lambda: _top(plane, "node", NODE), timeout_s=30, interval_s=1)
        await api.delete(PODS, "default", "web")
        await wait_for(lambda: _gone(api, "web"))


async def _renewed_after(api, renewed):
    lease = await api.get(LEASES, "kube-node-lease", NODE)
    return lease["spec"]["renewTime"] != renewed


async def _top(plane, kind, name):
    result = await kubectl(plane, "top", kind, name, check=False)
    return result.stdout if result.returncode == 0 else ""


async def _gone(api, name):
    return await get_pod(api, name) is None


async def test_a_crashing_container_backs_off_and_its_previous_log_is_served(plane, runtime, tmp_path):
    async with kubelet_running(plane, runtime, tmp_path, free_port()), admin(plane) as api:
        await api.create(PODS, "default", pod_body("crash", {
            "name": "c", "image": "busybox", "command": ["sh", "-c", "echo attempt; date +%s%N; exit 1"]}))

        async def looping():
            pod = await get_pod(api, "crash")
            state = container_status(pod)
            return pod if state.get("restartCount", 0) >= 1 and \
                (state.get("state") or {}).get("waiting", {}).get("reason") == "CrashLoopBackOff" else None
        pod = await wait_for(looping, timeout_s=40)
        state = container_status(pod)
        assert state["lastState"]["terminated"]["exitCode"] == 1 and state["lastState"]["terminated"]["reason"] == \
            "Error"
        assert "back-off 10s restarting failed container=c" in state["state"]["waiting"]["message"]
        assert pod["status"]["phase"] == "Running"
        current = (await kubectl(plane, "logs", "crash")).stdout
        previous = (await kubectl(plane, "logs", "crash", "--previous")).stdout
        assert current.startswith("attempt\n") and previous.startswith("attempt\n") and current != previous
        restarts = len([c for c in runtime.started if c.name == "c"])
        assert restarts == 2, "the second exit waits 10 s before the third start"
        await api.delete(PODS, "default", "crash")
        await wait_for(lambda: _gone(api, "crash"))


async def test_graceful_deletion_runs_pre_stop_then_sigterm_and_leaves_nothing(plane, runtime, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    async with kubelet_running(plane, runtime, tmp_path, free_port()) as kubelet, admin(plane) as api:
        await api.create(PODS, "default", pod_body("bye", {
            "name": "c", "image": "busybox",
            "command": ["sh", "-c", f"trap 'echo term > {marks}/term; exit 0' TERM; while true; do sleep 0.1; done"],
            "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", f"echo stop > {marks}/prestop"]}}}}))
        pod = await wait_for(lambda: _phase(api, "bye", "Running"))
        uid = pod["metadata"]["uid"]
        await kubectl(plane, "delete", "pod", "bye", "--wait=true")
        assert await get_pod(api, "bye") is None
        assert (marks / "prestop").read_text() == "stop\n" and (marks / "term").read_text() == "term\n"
        assert [c for c in runtime.list_containers() if c.pod_uid == uid] == []
        assert uid not in runtime.list_sandboxes() and uid not in kubelet.records
        assert not (tmp_path / "kubelet" / "pods" / uid / "volumes").exists()


async def _phase(api, name, phase):
    pod = await get_pod(api, name)
    return pod if (pod or {}).get("status", {}).get("phase") == phase else None


async def test_a_missing_image_backs_off_with_how_to_import_it_and_other_pods_still_run(plane, runtime, tmp_path):
    async with kubelet_running(plane, runtime, tmp_path, free_port()), admin(plane) as api:
        await api.create(PODS, "default", pod_body("noimage", {"name": "c", "image": "nginx:1.27"}))
        await api.create(PODS, "default", pod_body("fine", {"name": "c", "image": "busybox",
                                                            "command": ["sleep", "300"]}))

        async def backing_off():
            waiting = container_status(await get_pod(api, "noimage")).get("state", {}).get("waiting", {})
            return waiting if waiting.get("reason") == "ImagePullBackOff" else None
        waiting = await wait_for(backing_off)
        assert waiting["message"].startswith('Back-off pulling image "nginx:1.27": ErrImagePull: image "nginx:1.27" '
                                             "is not in the image store: import it with `ketch image import")
        assert await wait_for(lambda: _phase(api, "fine", "Running"))
        described = (await kubectl(plane, "describe", "pod", "noimage")).stdout
        assert 'Failed to pull image "nginx:1.27"' in described
        for name in ("noimage", "fine"):
            await api.delete(PODS, "default", name)
        for name in ("noimage", "fine"):
            await wait_for(lambda n=name: _gone(api, n))


async def test_specs_the_kubelet_cannot_run_get_an_event_and_a_reason_and_change_nothing(plane, runtime, tmp_path):
    escape = tmp_path / "escape-target"
    async with kubelet_running(plane, runtime, tmp_path, free_port()), admin(plane) as api:
        cases = {
            "nfs": ({"name": "v", "nfs": {"server": "nas", "path": "/export"}}, "nfs is not supported"),
            "hostpath": ({"name": "v", "hostPath": {"path": f"{tmp_path}/../{tmp_path.name}/escape-target",
                                                     "type": "DirectoryOrCreate"}}, "must not contain '..'"),
        }
        for name, (volume, _) in cases.items():
            await api.create(PODS, "default", pod_body(name, {"name": "c", "image": "busybox", "command": ["true"]},
                                                       volumes=[volume]))
        await api.create(PODS, "default", pod_body("subpath", {
            "name": "c", "image": "busybox", "command": ["true"],
            "volumeMounts": [{"name": "v", "mountPath": "/data", "subPath": "../../etc"}]},
            volumes=[{"name": "v", "emptyDir": {}}]))
        await api.create(PODS, "default", pod_body("config", {
            "name": "c", "image": "busybox", "command": ["sleep", "300"],
            "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "x"}}}]}))
        expected = {**{k: v[1] for k, v in cases.items()}, "subpath": "must not contain '..'",
                    "config": 'configmap "settings" not found'}
        for name, message in expected.items():
            async def refused(n=name):
                waiting = container_status(await get_pod(api, n)).get("state", {}).get("waiting", {})
                return waiting if waiting.get("reason") == "CreateContainerConfigError" else None
            waiting = await wait_for(refused)
            assert message in waiting["message"], (name, waiting)
        described = (await kubectl(plane, "describe", "pod", "nfs")).stdout
        assert "FailedMount" in described and "volume type nfs is not supported" in described
        assert not escape.exists() and runtime.started == []
        await api.create(resource("configmaps"), "default", {"metadata": {"name": "settings"}, "data": {"x": "1"}})
        assert await wait_for(lambda: _phase(api, "config", "Running"), timeout_s=40)
        assert runtime.started[-1].env[-1] == ("X", "1")
        for name in expected:
            await api.delete(PODS, "default", name)
        for name in expected:
            await wait_for(lambda n=name: _gone(api, n))


async def test_a_restarted_kubelet_adopts_its_containers_without_duplicates_or_lost_restarts(plane, runtime, tmp_path):
    async with admin(plane) as api:
        async with kubelet_running(plane, runtime, tmp_path, free_port()):
            await api.create(PODS, "default", pod_body("keep", {
                "name": "c", "image": "busybox",
                "command": ["sh", "-c", f"if [ -e {tmp_path}/once ]; then sleep 300; fi; touch {tmp_path}/once; "
                            "exit 3"]}))

            async def restarted_and_running():
                pod = await get_pod(api, "keep")
                state = container_status(pod)
                return pod if state.get("restartCount") == 1 and "running" in state.get("state", {}) else None
            await wait_for(restarted_and_running)
        started = len(runtime.started)
        async with kubelet_running(plane, runtime, tmp_path, free_port()) as kubelet:
            await wait_for(lambda: _true(kubelet.adopted.is_set()))
            await trio.sleep(2)
            pod = await get_pod(api, "keep")
            assert len(runtime.started) == started, "the new kubelet started nothing"
            assert container_status(pod)["restartCount"] == 1 and pod["status"]["phase"] == "Running"
            assert len([c for c in runtime.list_containers() if c.state == "running"]) == 1
            await api.delete(PODS, "default", "keep")
            await wait_for(lambda: _gone(api, "keep"))


async def _true(value):
    return value


async def test_pods_keep_running_while_the_api_server_is_away_and_status_catches_up(plane, runtime, tmp_path):
    async with kubelet_running(plane, runtime, tmp_path, free_port()), admin(plane) as api:
        await api.create(PODS, "default", pod_body("steady", {
            "name": "c", "image": "busybox",
            "command": ["sh", "-c", f"while [ ! -e {tmp_path}/crash ]; do sleep 0.1; done; rm {tmp_path}/crash; "
                        "exit 1"]}, restartPolicy="Always"))
        await wait_for(lambda: _phase(api, "steady", "Running"))
        api_server = plane.processes[0]
        api_server.terminate()
        await trio.to_thread.run_sync(api_server.wait)
        (tmp_path / "crash").touch()  # the container exits while nobody can hear about it
        await trio.sleep(20)
        running = [c for c in runtime.list_containers() if c.state == "running"]
        assert [c.attempt for c in running] == [1], "restarted during the outage, and running"
        plane.processes[0] = plane.start_api(0)
        plane.processes.pop()
        await trio.to_thread.run_sync(plane.wait_port, plane.ports[0])

        async def caught_up():
            pod = await get_pod(api, "steady")
            state = container_status(pod)
            return pod if state.get("restartCount") == 1 and "running" in state.get("state", {}) else None
        pod = await wait_for(caught_up, timeout_s=30)
        assert pod["status"]["phase"] == "Running"
        assert container_status(pod)["lastState"]["terminated"]["exitCode"] == 1
        await api.delete(PODS, "default", "steady")
        await wait_for(lambda: _gone(api, "steady"))


async def test_only_the_api_server_or_a_listed_token_may_call_the_kubelet(plane, runtime, tmp_path):
    port = free_port()
    pki = plane.pki_dir
    async with kubelet_running(plane, runtime, tmp_path, port):
        async def ask(context, headers=()):
            connection = Connection("127.0.0.1", port, context)
            await connection.open()
            try:
                code, _, body = await connection.request("GET", "/pods", list(headers))
            finally:
                await connection.aclose()
            return code, body
        anonymous = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        anonymous.check_hostname = False
        assert (await ask(anonymous))[0] == 401
        assert (await ask(anonymous, [("Authorization", "Bearer wrong")]))[0] == 401
        assert (await ask(anonymous, [("Authorization", f"Bearer {TOKEN}")]))[0] == 200
        api_server = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        api_server.check_hostname = False
        api_server.load_cert_chain(str(pki / "apiserver-kubelet-client.crt"), str(pki / "apiserver-kubelet-client.key"))
        code, body = await ask(api_server)
        assert code == 200 and json.loads(body)["kind"] == "PodList"
        other = tmp_path / "other"
        other.mkdir()
        stranger = _client_cert(pki, other, "someone-else")
        code, body = await ask(stranger)
        assert code == 403 and json.loads(body)["reason"] == "Forbidden"
        connection = Connection("127.0.0.1", port, anonymous)
        await connection.open()
        try:
            assert (await connection.request("GET", "/healthz", []))[0] == 200  # health needs no credential
        finally:
            await connection.aclose()


def _client_cert(pki, directory, common_name: str) -> ssl.SSLContext:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (directory / "c.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "c.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.check_hostname = False
    context.load_cert_chain(str(directory / "c.crt"), str(directory / "c.key"))
    return context

