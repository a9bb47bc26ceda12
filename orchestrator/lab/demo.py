"""The short demo `make up` runs once the lab is up: what a Kubernetes tutorial does first.

A Deployment of three busybox web servers and a Service in front of them, applied with kubectl;
the pods spread over the workers; then a request to the Service by its name, from inside a pod
(so it goes through the cluster DNS and the proxy). Each step prints the command a user would
type, and its output.
"""

from __future__ import annotations

import json
import time

from orchestrator.lab.cluster import LabState, kubectl

MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: busybox
        command: ["sh", "-c", "echo hello from $(hostname) > /tmp/index.html; exec httpd -f -p 80 -h /tmp"]
        ports: [{containerPort: 80}]
        readinessProbe:
          httpGet: {path: /index.html, port: 80}
          periodSeconds: 2
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 80}]
"""


class DemoFailed(RuntimeError):
    pass


def step(state: LabState, shown: str, *args: str, input: str | None = None, timeout: float = 60) -> str:
    print(f"$ {shown}", flush=True)
    result = kubectl(state, *args, timeout=timeout) if input is None else _kubectl_input(state, input, *args)
    output = (result.stdout or "") + (result.stderr or "")
    print(output.rstrip(), flush=True)
    if result.returncode != 0:
        raise DemoFailed(f"`{shown}` failed: {output.strip()}")
    return result.stdout


def _kubectl_input(state: LabState, text: str, *args: str):
    import os
    import subprocess

    from orchestrator.lab.components import Paths
    env = {**os.environ, "KUBECONFIG": str(Paths(state.directory).kubeconfig("admin")),
           "KUBECACHEDIR": str(state.directory / "kubectl-cache")}
    return subprocess.run(["kubectl", *args], input=text, capture_output=True, text=True, timeout=60, env=env)


def run_demo(state: LabState, timeout_s: float = 120) -> float:
    """Returns the seconds from applying the manifest to the Service answering by name."""
    started = time.monotonic()
    step(state, "kubectl apply -f web.yaml", "apply", "-f", "-", input=MANIFEST)
    step(state, "kubectl rollout status deployment/web", "rollout", "status", "deployment/web",
         f"--timeout={int(timeout_s)}s", timeout=timeout_s + 10)
    step(state, "kubectl get pods -o wide", "get", "pods", "-o", "wide", "-l", "app=web")
    pods = json.loads(kubectl(state, "get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
    client = pods[0]["metadata"]["name"]
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            answer = step(state, f"kubectl exec {client} -- wget -qO- http://web", "exec", client, "--",
                          "wget", "-qO-", "-T", "3", "http://web")
            if "hello from" in answer:
                return time.monotonic() - started
        except DemoFailed:
            if time.monotonic() > deadline:
                raise
        time.sleep(2)
