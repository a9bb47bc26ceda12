"""Every bundled kubectl minor (1.27 to 1.33), each with an empty discovery cache, typing the first
commands of every Kubernetes tutorial: generators (protobuf bodies from 1.32 on), set/label/annotate,
server-side apply with conflicts, diff, explain and strict validation."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

MINORS = range(27, 34)
BIN = Path("/usr/lib/google-cloud-sdk/bin")


@pytest.fixture(scope="module")
def caches(tmp_path_factory) -> dict[int, Path]:
    """One discovery cache per minor, empty when its first test starts (a warm cache hides bugs)."""
    root = tmp_path_factory.mktemp("kubectl-caches")
    return {minor: root / f"1.{minor}" for minor in MINORS}


@pytest.fixture(params=MINORS, ids=lambda minor: f"1.{minor}")
def kubectl(request, plane, caches):
    minor = request.param
    binary = BIN / f"kubectl.1.{minor}"
    if not binary.exists():
        pytest.skip(f"{binary} is not installed (the machines' kubectl bundles 1.27 to 1.33 beside it)")

    def run(*args: str, check: bool = True, input: str | None = None):
        return plane.kubectl(*args, binary=str(binary), cache_dir=caches[minor], check=check, input=input)
    run.minor = minor
    return run


def deployment(name: str, replicas: int = 2, image: str = "nginx:1.25", extra: dict | None = None) -> str:
    return yaml.safe_dump({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, **(extra or {}),
                                    "template": {"metadata": {"labels": {"app": name}},
                                                 "spec": {"containers": [{"name": "web", "image": image}]}}}})


def test_generator_commands_work_as_typed(kubectl):
    version = kubectl("version")
    assert "version skew" not in version.stdout + version.stderr, version.stderr  # kubectl's skew warning
    assert json.loads(kubectl("version", "-o", "json").stdout)["serverVersion"]["minor"] == str(kubectl.minor)
    assert "default" in kubectl("get", "ns").stdout  # discovery from an empty cache
    ns = f"m{kubectl.minor}"
    typed = [
        (["create", "namespace", ns], f"namespace/{ns} created"),
        (["create", "deployment", "web", "--image=nginx", "--replicas=2"], "deployment.apps/web created"),
        (["create", "service", "clusterip", "web", "--tcp=80:8080"], "service/web created"),
        (["create", "configmap", "cfg", "--from-literal=mode=lab"], "configmap/cfg created"),
        (["create", "secret", "generic", "pw", "--from-literal=password=s3cret"], "secret/pw created"),
        (["create", "job", "once", "--image=busybox"], "job.batch/once created"),
        (["create", "cronjob", "tick", "--image=busybox", "--schedule=*/5 * * * *"], "cronjob.batch/tick created"),
        (["run", "solo", "--image=busybox"], "pod/solo created"),
        (["expose", "deployment", "web", "--port=81", "--name=web-81"], "service/web-81 exposed"),
        (["autoscale", "deployment", "web", "--max=5"], "horizontalpodautoscaler.autoscaling/web autoscaled"),
        (["set", "image", "deployment/web", "nginx=nginx:1.26"], "deployment.apps/web image updated"),
        (["set", "env", "deployment/web", "MODE=lab"], "deployment.apps/web env updated"),
        (["set", "resources", "deployment/web", "--limits=cpu=200m"],
         "deployment.apps/web resource requirements updated"),
        (["label", "deployment", "web", "tier=front"], "deployment.apps/web labeled"),
        (["label", "--overwrite", "deployment", "web", "tier=back"], "deployment.apps/web labeled"),
        (["annotate", "deployment", "web", "note=x"], "deployment.apps/web annotated"),
        (["annotate", "--overwrite", "deployment", "web", "note=y"], "deployment.apps/web annotated"),
    ]
    for args, said in typed:
        out = kubectl(*args, *(["-n", ns] if args[1:2] != ["namespace"] else [])).stdout.strip()
        if kubectl.minor == 27 and args[0] == "annotate":
            said = said.removesuffix("d")  # kubectl 1.27 itself prints "annotate", whatever the server says
        assert out == said
    listed = json.loads(kubectl("get", "deploy,svc,cm,secret,job,cronjob,pod,hpa", "-n", ns, "-o", "json").stdout)
    objects = {(o["kind"], o["metadata"]["name"]): o for o in listed["items"]}
    web = objects[("Deployment", "web")]
    container = web["spec"]["template"]["spec"]["containers"][0]
    assert (web["spec"]["replicas"], container["image"]) == (2, "nginx:1.26")
    assert container["env"] == [{"name": "MODE", "value": "lab"}]
    assert container["resources"]["limits"] == {"cpu": "200m"}
    assert (web["metadata"]["labels"]["tier"], web["metadata"]["annotations"]["note"]) == ("back", "y")
    assert objects[("Service", "web")]["spec"]["ports"][0]["targetPort"] == 8080
    assert objects[("Service", "web-81")]["spec"]["selector"] == {"app": "web"}
    assert objects[("ConfigMap", "cfg")]["data"] == {"mode": "lab"}
    secret = objects[("Secret", "pw")]
    assert secret["type"] == "Opaque" and base64.b64decode(secret["data"]["password"]) == b"s3cret"
    job = objects[("Job", "once")]
    assert job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"] == job["metadata"]["uid"]
    assert objects[("CronJob", "tick")]["spec"]["schedule"] == "*/5 * * * *"
    assert objects[("Pod", "solo")]["spec"]["containers"][0]["image"] == "busybox"
    assert objects[("HorizontalPodAutoscaler", "web")]["spec"]["scaleTargetRef"]["name"] == "web"
    assert objects[("HorizontalPodAutoscaler", "web")]["spec"]["maxReplicas"] == 5


def test_server_side_apply_diff_explain_and_strict_validation(kubectl):
    ns = f"a{kubectl.minor}"
    kubectl("create", "namespace", ns)
    manifest = deployment("applied")
    assert "serverside-applied" in kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=manifest).stdout
    first = json.loads(kubectl("get", "deploy", "applied", "-n", ns, "-o", "json").stdout)["metadata"]
    kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=manifest)
    again = json.loads(kubectl("get", "deploy", "applied", "-n", ns, "-o", "json").stdout)["metadata"]
    assert again["resourceVersion"] == first["resourceVersion"]  # unchanged: nothing was written

    rival = kubectl("apply", "--server-side", "--field-manager=rival", "-n", ns, "-f", "-",
                    input=deployment("applied", replicas=5), check=False)
    assert rival.returncode == 1
    assert 'Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas' in rival.stderr
    kubectl("apply", "--server-side", "--field-manager=rival", "--force-conflicts", "-n", ns, "-f", "-",
            input=deployment("applied", replicas=5))
    taken = json.loads(kubectl("get", "deploy", "applied", "-n", ns, "-o", "json", "--show-managed-fields").stdout)
    assert taken["spec"]["replicas"] == 5
    owners = {e["manager"]: e["fieldsV1"] for e in taken["metadata"]["managedFields"]}
    assert "f:replicas" in owners["rival"]["f:spec"] and "f:replicas" not in owners["kubectl"]["f:spec"]

    pending = kubectl("diff", "-n", ns, "-f", "-", input=deployment("applied", replicas=5, image="nginx:1.27"),
                      check=False)
    assert pending.returncode == 1, pending.stderr  # 1: there are differences
    changed = [line for line in pending.stdout.splitlines() if "image: nginx" in line]
    assert [line[0] + line.split("image: ")[1] for line in changed] == ["-nginx:1.25", "+nginx:1.27"], pending.stdout
    still = json.loads(kubectl("get", "deploy", "applied", "-n", ns, "-o", "json").stdout)
    assert still["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"  # diff stored nothing

    dry = kubectl("apply", "--dry-run=server", "-n", ns, "-f", "-", input=deployment("dry"))
    assert dry.stdout.strip() == "deployment.apps/dry created (server dry run)"
    assert kubectl("get", "deploy", "dry", "-n", ns, check=False).returncode == 1

    typo = kubectl("apply", "-n", ns, "-f", "-", input=deployment("typo", extra={"replicass": 2}), check=False)
    assert typo.returncode == 1
    assert 'strict decoding error: unknown field "spec.replicass"' in typo.stderr

    explained = kubectl("explain", "deployment.spec.strategy.rollingUpdate").stdout
    assert "maxSurge" in explained and "maxUnavailable" in explained
    recursive = kubectl("explain", "pod.spec", "--recursive").stdout
    assert "containers" in recursive and "livenessProbe" in recursive and "tolerationSeconds" in recursive
