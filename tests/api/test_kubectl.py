"""Real kubectl 1.32 against Ketch's API server: the commands users type, and the errors they read."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time

import yaml

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: web
        image: {image}
        ports:
        - containerPort: 80
        env:
        - name: MODE
          value: lab
"""


def deployment(name: str, replicas: int = 2, image: str = "nginx:1.25") -> str:
    return DEPLOYMENT.format(name=name, replicas=replicas, image=image)


def test_version_reports_a_1_32_server(plane):
    out = plane.kubectl("version").stdout
    assert "Server Version: v1.32" in out


def test_apply_three_times_creates_configures_and_leaves_unchanged(plane):
    assert plane.kubectl("apply", "-f", "-", input=deployment("applied")).stdout.strip() == \
        "deployment.apps/applied created"
    assert "unchanged" in plane.kubectl("apply", "-f", "-", input=deployment("applied")).stdout
    changed = deployment("applied", replicas=3, image="nginx:1.26")
    assert plane.kubectl("apply", "-f", "-", input=changed).stdout.strip() == "deployment.apps/applied configured"
    assert plane.kubectl("apply", "-f", "-", input=changed).stdout.strip() == "deployment.apps/applied unchanged"
    got = json.loads(plane.kubectl("get", "deploy", "applied", "-o", "json").stdout)
    container = got["spec"]["template"]["spec"]["containers"][0]
    # strategic merge kept what the patch did not mention (ports, env) and changed what it did
    assert (got["spec"]["replicas"], container["image"]) == (3, "nginx:1.26")
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert container["env"] == [{"name": "MODE", "value": "lab"}]
    assert got["metadata"]["generation"] == 2
    assert got["spec"]["strategy"]["type"] == "RollingUpdate"  # defaulted


def test_get_prints_kubectl_columns_wide_yaml_json_and_all(plane):
    plane.kubectl("apply", "-f", "-", input=deployment("shown"))
    plane.kubectl("create", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "shown"},
        "spec": {"selector": {"app": "shown"}, "ports": [{"port": 80}]}}))
    wide = plane.kubectl("get", "deploy", "shown", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[:2] == ["shown", "0/2"] and "app=shown" in wide[1]
    service = plane.kubectl("get", "svc", "shown").stdout.splitlines()
    assert service[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    cluster_ip = service[1].split()[2]
    assert cluster_ip.startswith("10.96.") and "80/TCP" in service[1]
    everything = plane.kubectl("get", "all").stdout
    assert "deployment.apps/shown" in everything and "service/shown" in everything
    as_yaml = yaml.safe_load(plane.kubectl("get", "svc", "shown", "-o", "yaml").stdout)
    assert as_yaml["spec"]["clusterIP"] == cluster_ip and as_yaml["spec"]["type"] == "ClusterIP"
    listed = json.loads(plane.kubectl("get", "deploy", "-o", "json").stdout)
    assert listed["kind"] == "List" or listed["kind"] == "DeploymentList"
    assert "shown" in [d["metadata"]["name"] for d in listed["items"]]


def test_get_sort_by_a_field_outside_metadata(plane):
    """kubectl asks for Table rows with the whole object (?includeObject=Object) to sort them; with
    only their metadata it found nothing to sort by and printed "No resources found"."""
    for name, rank in (("sort-b", "2"), ("sort-c", "3"), ("sort-a", "1")):
        plane.kubectl("create", "configmap", name, f"--from-literal=rank={rank}")
    shown = plane.kubectl("get", "configmaps", "--sort-by=.data.rank").stdout.splitlines()
    names = [line.split()[0] for line in shown[1:] if line.startswith("sort-")]
    assert names == ["sort-a", "sort-b", "sort-c"], shown


def test_scale_label_annotate_and_edit(plane):
    plane.kubectl("apply", "-f", "-", input=deployment("tuned"))
    assert "scaled" in plane.kubectl("scale", "deploy/tuned", "--replicas=5").stdout
    plane.kubectl("label", "deploy", "tuned", "tier=front")
    plane.kubectl("annotate", "deploy", "tuned", "note=hello")
    plane.kubectl("edit", "deploy", "tuned", env={"KUBE_EDITOR": "sed -i s/nginx:1.25/nginx:1.27/"})
    got = json.loads(plane.kubectl("get", "deploy", "tuned", "-o", "json").stdout)
    assert got["spec"]["replicas"] == 5
    assert got["metadata"]["labels"]["tier"] == "front"
    assert got["metadata"]["annotations"]["note"] == "hello"
    assert got["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert got["metadata"]["generation"] == 3  # scale and edit changed the spec; label and annotate did not
    assert plane.kubectl("get", "deploy", "-l", "tier=front", "-o", "name").stdout.split() == ["deployment.apps/tuned"]


class FollowedOutput:
    """A long-running kubectl whose stdout lines are read as they come, so a test waits for the
    line it means instead of sleeping."""

    def __init__(self, plane, *args: str) -> None:
        self.process = subprocess.Popen(["kubectl", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env={"KUBECONFIG": str(plane.kubeconfig()),
                                                        "KUBECACHEDIR": str(plane.base_dir / "kc"),
                                                        "PATH": "/usr/bin:/bin"})
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, wanted, timeout_s: float = 30.0) -> str:
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if wanted(line):
                return line
        raise AssertionError(f"kubectl printed no such line within {timeout_s} s: {self.seen}")

    def stop(self) -> tuple[str, str]:
        if self.process.poll() is None:
            self.process.terminate()
        out, err = self.process.communicate(timeout=10)
        return out, err


def open_watches(plane) -> int:
    metrics = plane.kubectl("get", "--raw", "/metrics").stdout
    return int(float(next(line.split()[1] for line in metrics.splitlines()
                           if line.startswith("ketch_apiserver_watchers "))))


def test_get_pods_watch_prints_columns_then_live_rows(plane):
    before = open_watches(plane)
    watcher = FollowedOutput(plane, "get", "pods", "-w", "-l", "watched=yes")
    try:
        deadline = time.monotonic() + 30
        while open_watches(plane) <= before:  # kubectl prints nothing until the first row: watch the server
            assert time.monotonic() < deadline, "kubectl get -w never opened its watch"
            time.sleep(0.1)
        plane.kubectl("run", "watched", "--image=busybox", "--labels=watched=yes")
        header = watcher.wait_for(lambda line: line.startswith("NAME"))
        assert header.split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        watcher.wait_for(lambda line: line.split()[:3] == ["watched", "0/1", "Pending"])
    finally:
        watcher.stop()


def test_delete_waits_until_the_object_is_gone(plane):
    plane.kubectl("run", "doomed", "--image=busybox")
    out = plane.kubectl("delete", "pod", "doomed", "--wait=true", timeout=30).stdout
    assert 'pod "doomed" deleted' in out
    gone = plane.kubectl("get", "pod", "doomed", check=False)
    assert gone.returncode == 1 and 'pods "doomed" not found' in gone.stderr


def test_describe_pod_deployment_service_and_node(plane):
    plane.kubectl("run", "described", "--image=busybox:1.36", "--labels=app=described")
    pod = plane.kubectl("describe", "pod", "described").stdout
    assert "Name:" in pod and "described" in pod and "busybox:1.36" in pod
    # the account and its token volume, as kubectl describes them on a Kubernetes cluster
    assert "Service Account:  default" in pod and "Status:           Pending" in pod
    assert "/var/run/secrets/kubernetes.io/serviceaccount from kube-api-access-" in pod
    assert "TokenExpirationSeconds:  3607" in pod and "ConfigMapName:           kube-root-ca.crt" in pod
    plane.kubectl("apply", "-f", "-", input=deployment("describable"))
    deploy = plane.kubectl("describe", "deploy", "describable").stdout
    assert "StrategyType:           RollingUpdate" in deploy and "2 desired" in deploy
    plane.kubectl("expose", "deployment", "describable", "--port=80")
    service = plane.kubectl("describe", "service", "describable").stdout
    assert "IP Family Policy:         SingleStack" in service and "IP Families:              IPv4" in service
    assert "Type:                     ClusterIP" in service and "Port:                     <unset>  80/TCP" in service
    plane.kubectl("create", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a", "labels": {"zone": "z1"}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}],
                   "addresses": [{"type": "InternalIP", "address": "10.0.0.5"}]}}))
    node = plane.kubectl("describe", "node", "node-a").stdout
    assert "zone=z1" in node and "10.0.0.5" in node
    nodes = plane.kubectl("get", "nodes").stdout.splitlines()
    assert nodes[1].split()[:2] == ["node-a", "Ready"]


def test_rollout_status_follows_the_status_a_controller_writes(plane):
    plane.kubectl("apply", "-f", "-", input=deployment("rolled", replicas=2))
    got = json.loads(plane.kubectl("get", "deploy", "rolled", "-o", "json").stdout)
    status = {"status": {"observedGeneration": got["metadata"]["generation"], "replicas": 2, "updatedReplicas": 2,
                         "readyReplicas": 2, "availableReplicas": 2}}
    rollout = FollowedOutput(plane, "rollout", "status", "deploy/rolled", "--timeout=30s")
    try:
        rollout.wait_for(lambda line: line.startswith("Waiting for deployment"))  # it is watching now
        plane.kubectl("patch", "deploy", "rolled", "--subresource=status", "--type=merge", "-p", json.dumps(status))
        rollout.wait_for(lambda line: 'deployment "rolled" successfully rolled out' in line)
    finally:
        rollout.stop()
    assert rollout.process.returncode == 0


def test_auth_can_i_answers_per_role(plane):
    assert plane.kubectl("auth", "can-i", "create", "pods").stdout.strip() == "yes"
    viewer = plane.kubectl("auth", "can-i", "create", "pods", role="viewer", check=False)
    assert viewer.stdout.strip() == "no" and viewer.returncode == 1
    assert plane.kubectl("auth", "can-i", "list", "pods", role="viewer").stdout.strip() == "yes"


def test_errors_read_as_kubectl_users_know_them(plane):
    missing = plane.kubectl("get", "deploy", "nope", check=False)
    assert missing.stderr.strip() == 'Error from server (NotFound): deployments.apps "nope" not found'
    plane.kubectl("apply", "-f", "-", input=deployment("twice"))
    again = plane.kubectl("create", "-f", "-", input=deployment("twice"), check=False)
    assert 'Error from server (AlreadyExists): error when creating "STDIN": deployments.apps "twice" already exists' \
        in again.stderr
    stale = json.loads(plane.kubectl("get", "deploy", "twice", "-o", "json").stdout)
    plane.kubectl("scale", "deploy/twice", "--replicas=4")
    conflict = plane.kubectl("replace", "-f", "-", input=json.dumps(stale), check=False)
    assert "Error from server (Conflict)" in conflict.stderr and "the object has been modified" in conflict.stderr
    bad = plane.kubectl("create", "-f", "-", check=False, input=yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Bad_Name"}, "spec": {"containers": []}}))
    assert bad.stderr.startswith('The Pod "Bad_Name" is invalid: \n* metadata.name: Invalid value: "Bad_Name": ')
    assert "* spec.containers: Required value" in bad.stderr
    unauthorized = plane.kubectl("get", "pods", "--token=wrong", check=False)
    assert "error: You must be logged in to the server (Unauthorized)" in unauthorized.stderr
    forbidden = plane.kubectl("delete", "deploy", "twice", role="viewer", check=False)
    assert forbidden.stderr.strip() == ('Error from server (Forbidden): deployments.apps "twice" is forbidden: '
                                        'User "viewer" cannot delete resource "deployments" in API group "apps" '
                                        'in the namespace "default"')


def test_debug_adds_an_ephemeral_container_and_bad_ones_are_refused(plane):
    """`kubectl debug` without -i only adds the container (no kubelet runs here): kubectl
    patches pods/NAME/ephemeralcontainers; what it may not do comes back as kubectl prints a 422."""
    plane.kubectl("run", "debugged", "--image=busybox", "--", "sleep", "3600")
    plane.kubectl("debug", "debugged", "--image=busybox", "-c", "debugger", "--target=debugged")
    got = json.loads(plane.kubectl("get", "pod", "debugged", "-o", "json").stdout)
    [added] = got["spec"]["ephemeralContainers"]
    assert (added["name"], added["image"], added["targetContainerName"]) == ("debugger", "busybox", "debugged")
    assert [c["name"] for c in got["spec"]["containers"]] == ["debugged"]
    clash = plane.kubectl("debug", "debugged", "--image=busybox", "-c", "debugged", check=False)
    assert clash.returncode != 0 and 'spec.ephemeralContainers[1].name: Duplicate value: "debugged"' in clash.stderr
    no_target = plane.kubectl("debug", "debugged", "--image=busybox", "-c", "other", "--target=nope", check=False)
    assert no_target.returncode != 0 and 'targetContainerName: Not found: "nope"' in no_target.stderr
    del got["spec"]["ephemeralContainers"]
    replaced = plane.kubectl("replace", "-f", "-", input=json.dumps(got), check=False)
    assert replaced.returncode != 0 and "ephemeralcontainers subresource" in replaced.stderr
    deleted = plane.kubectl("delete", "--raw", "/api/v1/namespaces/default/pods/debugged/ephemeralcontainers",
                            check=False)
    assert deleted.returncode != 0 and "MethodNotAllowed" in deleted.stderr, deleted.stderr
    after = json.loads(plane.kubectl("get", "pod", "debugged", "-o", "json").stdout)  # the pod is still there
    assert [c["name"] for c in after["spec"]["ephemeralContainers"]] == ["debugger"]


def test_create_token_and_use_it_as_the_service_account(plane):
    plane.kubectl("create", "namespace", "shop")
    plane.kubectl("create", "serviceaccount", "robot", "-n", "shop")
    token = plane.kubectl("create", "token", "robot", "-n", "shop").stdout.strip()
    assert token.count(".") == 2

    def as_robot(*args, server=None):
        return plane.kubectl(*args, f"--token={token}", *([f"--server={server}"] if server else []), check=False)
    listed = as_robot("get", "pods", "-n", "shop")
    assert listed.returncode == 0 and "No resources found in shop namespace." in listed.stderr
    assert as_robot("get", "pods", "-n", "shop", server=plane.servers[1]).returncode == 0  # the same key on both
    across = as_robot("get", "pods", "-n", "default")
    assert across.stderr.strip() == ('Error from server (Forbidden): pods is forbidden: User '
                                     '"system:serviceaccount:shop:robot" cannot list resource "pods" in API group "" '
                                     'in the namespace "default"')
    assert "cannot list resource \"secrets\"" in as_robot("get", "secrets", "-n", "shop").stderr
    answers = {args: as_robot("auth", "can-i", *args).stdout.strip() for args in [
        ("list", "pods", "-n", "shop"), ("watch", "deployments", "-n", "shop"), ("get", "secrets", "-n", "shop"),
        ("create", "pods", "-n", "shop"), ("list", "pods", "-n", "default"), ("list", "nodes")]}
    assert answers == {("list", "pods", "-n", "shop"): "yes", ("watch", "deployments", "-n", "shop"): "yes",
                       ("get", "secrets", "-n", "shop"): "no", ("create", "pods", "-n", "shop"): "no",
                       ("list", "pods", "-n", "default"): "no", ("list", "nodes"): "no"}
    whoami = as_robot("auth", "whoami", "-o", "json")
    assert json.loads(whoami.stdout)["status"]["userInfo"]["username"] == "system:serviceaccount:shop:robot"
    assert "system:serviceaccounts:shop" in as_robot("auth", "whoami").stdout
    bad = plane.kubectl("get", "pods", "-n", "shop", f"--token={token[:-4]}AAAA", check=False)
    assert "error: You must be logged in to the server (Unauthorized)" in bad.stderr


def test_pods_mount_a_token_and_tokens_bound_to_a_pod_die_with_it(plane):
    plane.kubectl("create", "namespace", "bound")
    plane.kubectl("create", "serviceaccount", "robot", "-n", "bound")
    plane.kubectl("create", "serviceaccount", "other", "-n", "bound")
    plane.kubectl("run", "holder", "-n", "bound", "--image=busybox", "--restart=Never",
                  '--overrides={"spec": {"serviceAccountName": "robot"}}', "--", "sleep", "300")
    pod = json.loads(plane.kubectl("get", "pod", "holder", "-n", "bound", "-o", "json").stdout)
    volume = pod["spec"]["volumes"][0]
    assert pod["spec"]["serviceAccount"] == "robot" and volume["name"].startswith("kube-api-access-")
    assert pod["spec"]["containers"][0]["volumeMounts"] == [
        {"name": volume["name"], "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]
    bound = plane.kubectl("create", "token", "robot", "-n", "bound", "--bound-object-kind", "Pod",
                          "--bound-object-name", "holder", "-o", "json")
    request = json.loads(bound.stdout)
    assert request["kind"] == "TokenRequest" and request["spec"]["boundObjectRef"]["name"] == "holder"
    token = request["status"]["token"]
    assert plane.kubectl("get", "pod", "holder", "-n", "bound", f"--token={token}").returncode == 0
    failures = {
        "no account": plane.kubectl("create", "token", "nobody", "-n", "bound", check=False).stderr.strip(),
        "no pod": plane.kubectl("create", "token", "robot", "-n", "bound", "--bound-object-kind", "Pod",
                                "--bound-object-name", "ghost", check=False).stderr.strip(),
        "too short": plane.kubectl("create", "token", "robot", "-n", "bound", "--duration=5m",
                                   check=False).stderr.strip(),
        "another account's pod": plane.kubectl("create", "token", "other", "-n", "bound", "--bound-object-kind",
                                               "Pod", "--bound-object-name", "holder", check=False).stderr.strip(),
    }
    assert failures["no account"] == 'error: failed to create token: serviceaccounts "nobody" not found'
    assert failures["no pod"] == 'error: failed to create token: pods "ghost" not found'
    assert failures["too short"] == ('error: failed to create token: TokenRequest.authentication.k8s.io "robot" is '
                                     'invalid: spec.expirationSeconds: Invalid value: 300: may not specify a duration '
                                     'less than 10 minutes')
    assert failures["another account's pod"] == ('error: failed to create token: cannot bind token for '
                                                 'serviceaccount "other" to pod running with different serviceaccount '
                                                 'name.')
    plane.kubectl("delete", "pod", "holder", "-n", "bound")  # not on a node: gone at once
    after = plane.kubectl("get", "pods", "-n", "bound", f"--token={token}", check=False)
    assert "error: You must be logged in to the server (Unauthorized)" in after.stderr
