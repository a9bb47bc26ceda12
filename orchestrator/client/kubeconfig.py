"""Kubeconfig loading: the current context's server, CA and bearer token (what Ketch's PKI writes)."""

from __future__ import annotations

import base64
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import yaml


class KubeconfigError(Exception):
    pass


@dataclass(frozen=True)
class ClusterAccess:
    server: str
    token: str
    ca_pem: bytes | None
    namespace: str = "default"

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cadata=self.ca_pem.decode() if self.ca_pem else None)
        return context


def load(path: str | Path | None = None) -> ClusterAccess:
    path = Path(path or os.environ.get("KUBECONFIG") or Path.home() / ".kube" / "config")
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise KubeconfigError(f"cannot read kubeconfig {path}: {err}") from None
    try:
        context_name = config["current-context"]
        context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
    except (KeyError, StopIteration, TypeError) as err:
        raise KubeconfigError(f"kubeconfig {path} has no usable current context ({err})") from None
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(user["tokenFile"]).read_text().strip()
    if not token:
        raise KubeconfigError(f"kubeconfig {path}: the user has no token (Ketch uses bearer tokens)")
    ca = None
    if cluster.get("certificate-authority-data"):
        ca = base64.b64decode(cluster["certificate-authority-data"])
    elif cluster.get("certificate-authority"):
        ca = Path(cluster["certificate-authority"]).read_bytes()
    return ClusterAccess(cluster["server"], token, ca, context.get("namespace", "default"))
