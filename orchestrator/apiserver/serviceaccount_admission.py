"""The ServiceAccount admission of a new pod (pure; the API server looks up the account).

Rules kept (Kubernetes' ServiceAccount admission plugin, plugin/pkg/admission/serviceaccount):
- only pods being created, and not mirror pods (annotation kubernetes.io/config.mirror);
- spec.serviceAccountName defaults to "default" (or to the deprecated spec.serviceAccount when only
  that is given), and spec.serviceAccount mirrors it, as the v1 API shows both;
- a token is mounted unless automountServiceAccountToken is false: the pod's setting wins, then the
  account's, and the default is true;
- mounting means one projected volume `kube-api-access-<5 random characters>` (reused if the pod
  already has a volume with that prefix) with three sources: a serviceAccountToken (expirationSeconds
  3607, path "token"), the kube-root-ca.crt ConfigMap's ca.crt, and the namespace from the downward
  API, defaultMode 0644; and a read-only mount of it at /var/run/secrets/kubernetes.io/serviceaccount
  in every init container and container that does not already mount something at that path
  (ephemeral containers are left alone).

Kubernetes refuses a pod whose service account does not exist. Ketch is lenient there (the caller
passes account=None and the pod is admitted as if the account said nothing): a pod created right
after its namespace would otherwise be refused until the ServiceAccount controller has made the
namespace's `default` account. The kubelet waits for the token instead: a token request for a
missing account fails, and the pod does not start until one is issued.
"""

from __future__ import annotations

TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
# Kubernetes' SimpleNameGenerator alphabet: no vowels (no words), no 0/1/3 (no look-alikes)
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
SUFFIX_LENGTH = 5
# 1 h + 7 s: Kubernetes' WarnOnlyBoundTokenExpirationSeconds, the marker of an admission-made token
TOKEN_EXPIRY_S = 3607
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
DEFAULT_MODE = 0o644


def suffix_from(draw: list[int]) -> str:
    """The volume-name suffix for SUFFIX_LENGTH random indices (the caller draws them)."""
    return "".join(NAME_ALPHABET[i % len(NAME_ALPHABET)] for i in draw[:SUFFIX_LENGTH])


def account_name(spec: dict) -> str:
    return spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"


def should_automount(spec: dict, account: dict | None) -> bool:
    if isinstance(spec.get("automountServiceAccountToken"), bool):
        return spec["automountServiceAccountToken"]
    if account is not None and isinstance(account.get("automountServiceAccountToken"), bool):
        return account["automountServiceAccountToken"]
    return True


def token_volume(name: str) -> dict:
    return {"name": name, "projected": {"defaultMode": DEFAULT_MODE, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRY_S, "path": "token"}},
        {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                      "fieldPath": "metadata.namespace"}}]}},
    ]}}


def admit_pod(pod: dict, account: dict | None, suffix: str, mount_token: bool = True) -> None:
    """Change a pod being created as the ServiceAccount admission does. account: the pod's
    ServiceAccount, or None if it does not exist (yet); suffix: SUFFIX_LENGTH characters of
    NAME_ALPHABET (suffix_from); mount_token: False when the API server issues no tokens (then
    only the names are set, as with Kubernetes' plugin when token mounting is off)."""
    spec = pod.get("spec")
    if not isinstance(spec, dict) or MIRROR_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {}):
        return
    name = account_name(spec)
    spec["serviceAccountName"] = spec["serviceAccount"] = name
    if mount_token and should_automount(spec, account):
        _mount_token(spec, suffix)


def _mount_token(spec: dict, suffix: str) -> None:
    volumes = spec.get("volumes") if isinstance(spec.get("volumes"), list) else []
    existing = next((v.get("name") for v in volumes if isinstance(v, dict)
                     and str(v.get("name", "")).startswith(VOLUME_PREFIX)), None)
    volume_name = existing or VOLUME_PREFIX + suffix
    needed = False
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            if not isinstance(container, dict):
                continue
            mounts = container.get("volumeMounts") if isinstance(container.get("volumeMounts"), list) else []
            if any(isinstance(m, dict) and m.get("mountPath") == TOKEN_MOUNT_PATH for m in mounts):
                continue
            container["volumeMounts"] = mounts + [{"name": volume_name, "readOnly": True,
                                                   "mountPath": TOKEN_MOUNT_PATH}]
            needed = True
    if needed and existing is None:
        spec["volumes"] = volumes + [token_volume(volume_name)]
