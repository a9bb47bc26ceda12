"""The short demo `make up` runs once the lab is up: what a Kubernetes tutorial does first.

A Deployment of three busybox web servers and a Service in front of them, applied with kubectl;
the pods spread over the workers; then a request to the Service by its name, from inside a pod
(a client pod, so it goes through the cluster DNS and the proxy). Each step prints the command a user would
type, and its output.
"""

from __future__ import annotations

import time
import urllib.request

from orchestrator.lab.cluster import LabState, kubectl

MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: busybox
        command: ["sh", "-c", "d=$(mktemp -d); echo hello from $HOSTNAME >$d/index.html;
                               exec httpd -f -p $POD_IP:{port} -h $d"]
        env: [{{name: POD_IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}]
        ports: [{{containerPort: {port}}}]
        readinessProbe:
          httpGet: {{path: /index.html, port: {port}}}
          periodSeconds: 2
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: {service_type}
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: {port}}}]
"""
# Without root, pods are plain processes sharing the machine's network, each on its own loopback
# pod IP: they bind it, on an unprivileged port, and are reached through the Service's NodePort.


def manifest(state: LabState) -> str:
    return MANIFEST.format(port=80 if state.netns else 8080, service_type="ClusterIP" if state.netns else "NodePort")


class DemoFailed(RuntimeError):
    pass


def step(state: LabState, shown: str, *args: str, input: str | None = None, timeout: float = 60) -> str:
    print(f"$ {shown}", flush=True)
    result = kubectl(state, *args, timeout=timeout, input=input)
    output = (result.stdout or "") + (result.stderr or "")
    print(output.rstrip(), flush=True)
    if result.returncode != 0:
        raise DemoFailed(f"`{shown}` failed: {output.strip()}")
    return result.stdout


def run_demo(state: LabState, timeout_s: float = 120) -> float:
    """Returns the seconds from applying the manifest to the Service answering (by name from a
    pod in a namespace lab; through its NodePort from this machine in a loopback lab)."""
    started = time.monotonic()
    config = state.config()
    step(state, "kubectl apply -f web.yaml", "apply", "-f", "-", input=manifest(state))
    step(state, "kubectl rollout status deployment/web", "rollout", "status", "deployment/web",
         f"--timeout={int(timeout_s)}s", timeout=timeout_s + 10)
    step(state, "kubectl get pods -o wide", "get", "pods", "-o", "wide", "-l", "app=web")
    deadline = time.monotonic() + timeout_s
    if not state.netns:
        return _ask_node_port(state, config.workers[0].address, started, deadline)
    while True:  # the first answer may wait for the Service's rules and DNS name to reach the node
        step(state, "kubectl run client --image=busybox --restart=Never -- wget -qO- http://web",
             "run", "client", "--image=busybox", "--restart=Never", "--", "wget", "-qO-", "http://web")
        phase = _wait_finished(state, "client", deadline)
        answer = step(state, "kubectl logs client", "logs", "client")
        kubectl(state, "delete", "pod", "client", "--wait=false")
        if phase == "Succeeded" and "hello from" in answer:
            return time.monotonic() - started
        if time.monotonic() > deadline:
            raise DemoFailed(f"the client pod ended {phase} and got {answer.strip()!r}")
        _wait_gone(state, "client", deadline)


def _wait_finished(state: LabState, pod: str, deadline: float) -> str:
    while time.monotonic() < deadline:
        shown = kubectl(state, "get", "pod", pod, "-o", "jsonpath={.status.phase}")
        if shown.stdout in ("Succeeded", "Failed"):
            return shown.stdout
        time.sleep(1)
    raise DemoFailed(f"pod {pod} did not finish in time")


def _wait_gone(state: LabState, pod: str, deadline: float) -> None:
    while time.monotonic() < deadline and kubectl(state, "get", "pod", pod).returncode == 0:
        time.sleep(1)


def _ask_node_port(state: LabState, address: str, started: float, deadline: float) -> float:
    port = kubectl(state, "get", "service", "web", "-o", "jsonpath={.spec.ports[0].nodePort}").stdout.strip()
    url = f"http://{address}:{port}/"
    print(f"$ wget -qO- {url}", flush=True)
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3) as answer:
                text = answer.read().decode()
            print(text.rstrip(), flush=True)
            return time.monotonic() - started
        except OSError as err:
            if time.monotonic() > deadline:
                raise DemoFailed(f"{url} did not answer: {err}") from None
            time.sleep(1)
