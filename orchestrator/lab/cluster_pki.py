"""The secrets of a cluster file, made once (`ketch pki init --config cluster.toml`, or by `ketch
up`): the CA, the API server's certificate for every control-plane address, a token and
kubeconfig per role and per node, each host's kubeconfigs pointing at its own API endpoint, the
kubelets' serving certificates, and the kv store's client token and peer secret. Running it again
keeps what exists and adds what a changed file needs (a new worker), so it is safe to repeat."""

from __future__ import annotations

import secrets
from pathlib import Path

from kvstore.member import new_secret_file
from orchestrator.lab.components import Paths, api_endpoint, kubeconfig_roles
from orchestrator.lab.config import ClusterConfig
from orchestrator.pki import certs

USER_SERVER = "https://127.0.0.1:6443"  # where a user's kubectl reaches the cluster (the lab access proxy)


def role_user(role: str) -> str:
    if role.startswith("node-"):
        return f"system:node:{role[len('node-'):]}"
    return certs.ROLES[role][0]


def init_cluster_pki(config: ClusterConfig, user_server: str = USER_SERVER) -> list[Path]:
    paths = Paths(config.directory)
    pki = paths.pki
    written: list[Path] = []
    if not (pki / "tokens.csv").exists():
        names = [h.address for h in config.control_planes] + [config.api_service_ip]
        written += certs.init(pki, user_server, names)
    kv_tokens = pki / "kv-tokens"
    if not kv_tokens.exists():
        certs._write_private(kv_tokens, (secrets.token_hex(24) + "\n").encode())
        written.append(kv_tokens)
    if not (pki / "kv-peer-secret").exists():
        new_secret_file(pki / "kv-peer-secret")
        written.append(pki / "kv-peer-secret")
    for host in config.workers:
        try:
            certs.token_of(pki, role_user(f"node-{host.name}"))
        except ValueError:
            written.append(certs.add_node(pki, host.name))
        if not (pki / f"kubelet-{host.name}.crt").exists():
            written += certs.kubelet_serving(pki, host.name, host.address)
    for host in config.hosts:
        for role in kubeconfig_roles(config, host):
            written.append(certs.write_kubeconfig(pki, role_user(role), api_endpoint(config, host),
                                                  certs.token_of(pki, role_user(role)),
                                                  name=paths.kubeconfig(role, host.name).name))
    return written
