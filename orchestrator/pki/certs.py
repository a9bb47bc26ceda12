"""`ketch pki init` and `ketch pki node`: a lab's CA, the API server's certificate, tokens and kubeconfigs.

    ketch pki init --dir DIR --server https://127.0.0.1:6443
    ketch pki node NAME --dir DIR

`init` writes ca.crt, ca.key, apiserver.crt, apiserver.key (ECDSA P-256, with the server's host,
localhost, 127.0.0.1 and the first service IP as names), tokens.csv (Kubernetes' static token
file) with one token per role, and a kubeconfig per role: admin, viewer, scheduler,
controller-manager, proxy. `node NAME` adds a token for system:node:NAME and writes
node-NAME.kubeconfig; the API server rereads tokens.csv when it changes. Keys and tokens are
written with mode 0600.
"""

from __future__ import annotations

import base64
import csv
import datetime
import io
import ipaddress
import os
import secrets
from pathlib import Path
from urllib.parse import urlparse

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROLES = {  # kubeconfig name -> (user, groups)
    "admin": ("admin", "system:masters"),
    "viewer": ("viewer", "ketch:viewers"),
    "scheduler": ("system:kube-scheduler", "ketch:schedulers"),
    "controller-manager": ("system:kube-controller-manager", "ketch:controllers"),
    "proxy": ("system:kube-proxy", "ketch:proxies"),
}
VALID_DAYS = 365


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _names(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes"),
        x509.DNSName("kubernetes.default"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("10.96.0.1")),
    ]
    try:
        address = ipaddress.ip_address(host)
        if x509.IPAddress(address) not in names:
            names.append(x509.IPAddress(address))
    except ValueError:
        if x509.DNSName(host) not in names:
            names.append(x509.DNSName(host))
    return names


def _validity(now: datetime.datetime, builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    return (builder.serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS)))


def _new_ca(now: datetime.datetime):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ketch-ca")])
    usage = x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False)
    cert = (_validity(now, x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def _issue(ca_cert, ca_key, common_name: str, names: list[x509.GeneralName], usage, now: datetime.datetime,
           organization: str | None = None):
    """A certificate for a server (usage SERVER_AUTH, with names) or a client (CLIENT_AUTH)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        subject.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    builder = _validity(now, x509.CertificateBuilder().subject_name(x509.Name(subject))
                        .issuer_name(ca_cert.subject).public_key(key.public_key()))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False).sign(ca_key, hashes.SHA256())
    return cert, key


def _save(directory: Path, stem: str, cert, key) -> list[Path]:
    (directory / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(directory / f"{stem}.key", _key_pem(key))
    return [directory / f"{stem}.crt", directory / f"{stem}.key"]


def _load_ca(directory: Path):
    cert = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
    key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
    return cert, key


def init(directory: Path, server: str, extra_names: list[str] = ()) -> list[Path]:
    parsed = urlparse(server)
    if parsed.scheme != "https" or not parsed.hostname:
        raise ValueError(f"--server must be https://HOST:PORT, got {server!r} (kubectl sends tokens only over https)")
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca, ca_key = _new_ca(now)
    (directory / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    _write_private(directory / "ca.key", _key_pem(ca_key))
    names = _names(parsed.hostname)
    for extra in extra_names:
        names += [n for n in _names(extra) if n not in names]
    written = [directory / "ca.crt", directory / "ca.key"]
    written += _save(directory, "apiserver", *_issue(ca, ca_key, "kube-apiserver", names,
                                                      ExtendedKeyUsageOID.SERVER_AUTH, now))
    # the API server's client certificate towards the kubelets (logs, exec, port-forward, stats)
    written += _save(directory, "apiserver-kubelet-client", *_issue(
        ca, ca_key, "kube-apiserver-kubelet-client", [], ExtendedKeyUsageOID.CLIENT_AUTH, now, "system:masters"))
    (directory / "server").write_text(server + "\n")
    rows = []
    for role, (user, group) in ROLES.items():
        token = secrets.token_hex(24)
        rows.append([token, user, user, group])
        written.append(write_kubeconfig(directory, role, server, token))
    _write_tokens(directory / "tokens.csv", rows)
    return written + [directory / "tokens.csv"]


def kubelet_serving(directory: Path, node: str, address: str) -> list[Path]:
    """A kubelet's serving certificate (node name and address as names), signed by the lab's CA."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca, ca_key = _load_ca(directory)
    names = [x509.DNSName(node)] + [n for n in _names(address) if isinstance(n, x509.IPAddress)]
    return _save(directory, f"kubelet-{node}", *_issue(ca, ca_key, f"system:node:{node}", names,
                                                       ExtendedKeyUsageOID.SERVER_AUTH, now, "system:nodes"))


def token_of(directory: Path, user: str) -> str:
    for row in csv.reader((directory / "tokens.csv").read_text().splitlines()):
        if row and row[1] == user:
            return row[0]
    raise ValueError(f"no token for {user} in {directory / 'tokens.csv'}")


def _write_tokens(path: Path, rows: list[list[str]]) -> None:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n", quoting=csv.QUOTE_MINIMAL).writerows(rows)
    _write_private(path, text.getvalue().encode())


def write_kubeconfig(directory: Path, role: str, server: str, token: str, name: str | None = None) -> Path:
    ca_data = base64.b64encode((directory / "ca.crt").read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "ketch",
        "clusters": [{"name": "ketch", "cluster": {"server": server, "certificate-authority-data": ca_data}}],
        "users": [{"name": role, "user": {"token": token}}],
        "contexts": [{"name": "ketch", "context": {"cluster": "ketch", "user": role, "namespace": "default"}}],
        "preferences": {},
    }
    path = directory / (name or f"{role}.kubeconfig")
    _write_private(path, yaml.safe_dump(config, sort_keys=False).encode())
    return path


def add_node(directory: Path, node: str) -> Path:
    tokens = directory / "tokens.csv"
    server = (directory / "server").read_text().strip()
    user = f"system:node:{node}"
    rows = [row for row in csv.reader(tokens.read_text().splitlines()) if row and row[1] != user]
    token = secrets.token_hex(24)
    rows.append([token, user, user, "system:nodes"])
    _write_tokens(tokens, rows)
    return write_kubeconfig(directory, f"node-{node}", server, token)
