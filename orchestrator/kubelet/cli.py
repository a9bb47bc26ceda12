"""`ketch kubelet`: run the pods bound to this node (issue 11).

    ketch kubelet --kubeconfig K --node-name N [--runtime runc|process|local] [--root-dir DIR]
                  [--cluster-dns IP] [--node-ip IP] [--port 10250] [--tls-cert C --tls-key K]
                  [--client-ca CA] [--auth-token-file F] [--node-labels k=v,...]
    ketch kubelet --node-name N --root-dir DIR --cleanup      # remove everything this node made

Run it inside the node's network namespace (`ip netns exec HOST ketch kubelet ...` in a lab):
pods get addresses from the node's pod CIDR and the kubelet's HTTPS server listens on
--node-ip:--port. Without root the runtime is `local` and pods share the node's network.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

log = logging.getLogger("ketch.kubelet")


def add_parser(subparsers) -> None:
    kubelet = subparsers.add_parser("kubelet", help="run the pods bound to this node (runc, process or local)")
    kubelet.add_argument("--kubeconfig", help="the node's kubeconfig (ketch pki node NAME writes one)")
    kubelet.add_argument("--node-name", default=os.uname().nodename)
    kubelet.add_argument("--runtime", choices=("runc", "process", "local"),
                         help="default: runc as root with runc installed, else process as root, else local")
    kubelet.add_argument("--root-dir", type=Path, default=None,
                         help="pods, volumes, logs and state (default /var/lib/ketch/kubelet, ~/.ketch/kubelet "
                              "without root)")
    kubelet.add_argument("--image-store", type=Path, help="the OCI image store (default ROOT_DIR/../images)")
    kubelet.add_argument("--cluster-dns", action="append", default=[], metavar="IP",
                         help="nameserver for pods with dnsPolicy ClusterFirst (repeatable, or comma-separated)")
    kubelet.add_argument("--cluster-domain", default="cluster.local")
    kubelet.add_argument("--cluster-cidr", help="the whole pod network (never masqueraded), e.g. 10.244.0.0/16")
    kubelet.add_argument("--node-ip", help="the node's address (default: the host's outgoing address)")
    kubelet.add_argument("--port", type=int, default=10250, help="the kubelet's HTTPS port (default 10250)")
    kubelet.add_argument("--tls-cert", help="serving certificate (default: a self-signed one in ROOT_DIR/pki)")
    kubelet.add_argument("--tls-key")
    kubelet.add_argument("--client-ca", help="CA of the client certificates accepted (the API server's)")
    kubelet.add_argument("--auth-token-file", help="bearer tokens accepted besides client certificates, one a line")
    kubelet.add_argument("--node-labels", default="", help="k=v,... added to the Node's labels")
    kubelet.add_argument("--max-pods", type=int, default=110)
    kubelet.add_argument("--heartbeat-seconds", type=float, default=2.0,
                         help="Lease renewal period (Kubernetes renews every 10 s; lab grace periods are short)")
    kubelet.add_argument("--cleanup", action="store_true",
                         help="stop and remove every container, sandbox, pod network and volume of this node, "
                              "then exit")
    kubelet.set_defaults(func=run_kubelet)
    image = subparsers.add_parser("image", help="the kubelets' image store: import OCI layouts, list, remove")
    sub = image.add_subparsers(dest="image_command", metavar="COMMAND", required=True)
    store_help = "the image store (default $KETCH_IMAGE_STORE, /var/lib/ketch/images as root, else " \
                 "~/.local/share/ketch/images; a lab's is LAB_DIR/images)"
    imported = sub.add_parser("import", help="import an OCI image layout (a directory or a tar of one)")
    imported.add_argument("source", type=Path)
    imported.add_argument("--name", help="the image's name when the layout gives only a tag (skopeo oci:DIR:TAG)")
    imported.add_argument("--store", type=Path, help=store_help)
    listed = sub.add_parser("ls", help="list the images")
    listed.add_argument("--store", type=Path, help=store_help)
    removed = sub.add_parser("rm", help="remove an image")
    removed.add_argument("ref")
    removed.add_argument("--store", type=Path, help=store_help)
    image.set_defaults(func=run_image)


def default_image_store() -> Path:
    if os.environ.get("KETCH_IMAGE_STORE"):
        return Path(os.environ["KETCH_IMAGE_STORE"])
    if os.geteuid() == 0:
        return Path("/var/lib/ketch/images")
    return Path.home() / ".local" / "share" / "ketch" / "images"


def run_image(args) -> int:
    from orchestrator.kubelet.runtime.base import RuntimeFailure
    from orchestrator.kubelet.runtime.images import ImageStore
    store = ImageStore(args.store or default_image_store())
    try:
        if args.image_command == "import":
            for ref in store.import_path(args.source, args.name):
                print(f"imported {ref}")
        elif args.image_command == "ls":
            print(f"{'IMAGE':40} {'ID':20} SIZE")
            for entry in store.list():
                print(f"{entry['ref']:40} {entry['id'][:19]:20} {entry['size'] // 1024} KiB")
        else:
            store.remove(args.ref)
            print(f"removed {args.ref}")
    except (RuntimeFailure, OSError, ValueError) as err:
        print(f"ketch image: {err}", file=sys.stderr)
        return 1
    return 0


class KubeletConfigError(Exception):
    pass


def _root_dir(args) -> Path:
    if args.root_dir is not None:
        return args.root_dir.resolve()
    return Path("/var/lib/ketch/kubelet") if os.geteuid() == 0 else Path.home() / ".ketch" / "kubelet"


def _labels(text: str) -> dict[str, str]:
    out = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise KubeletConfigError(f"--node-labels: {item!r} is not key=value")
        out[key] = value
    return out


def make_runtime(name: str | None, root_dir: Path, image_store: Path | None, node_name: str):
    """Contract A's factory (the runtime package); a clear error while it is missing."""
    from orchestrator.kubelet.runtime import choose_runtime
    from orchestrator.kubelet.runtime.images import ImageStore
    store = image_store or root_dir.parent / "images"
    return choose_runtime(name, root_dir, ImageStore(store), f"ketch-{node_name}")


def _network(runtime, node_name: str, node_ip: str, root_dir: Path, cluster_cidr: str | None):
    """A bridge and a namespace per pod as root; own loopback addresses for the local runtime."""
    from orchestrator.kubelet.network import BridgeNetwork, LoopbackNetwork
    if os.geteuid() == 0 and runtime.name != "local":
        return BridgeNetwork(node_name, node_ip, root_dir / "network", cluster_cidr)
    return LoopbackNetwork(root_dir / "network")


def run_kubelet(args) -> int:
    from orchestrator.kubelet.runtime.base import RuntimeFailure
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
    try:
        root_dir = _root_dir(args)
        root_dir.mkdir(parents=True, exist_ok=True)
        runtime = make_runtime(args.runtime, root_dir, args.image_store, args.node_name)
        if args.cleanup:
            from orchestrator.kubelet.cleanup import clean_node
            clean_node(runtime, args.node_name, root_dir)
            return 0
        if not args.kubeconfig:
            raise KubeletConfigError("--kubeconfig is required")
        if not 0 < args.port < 65536 or args.max_pods < 1 or args.heartbeat_seconds <= 0:
            raise KubeletConfigError("--port 1..65535, --max-pods >= 1 and --heartbeat-seconds > 0")
        if bool(args.tls_cert) != bool(args.tls_key):
            raise KubeletConfigError("--tls-cert and --tls-key go together")
        for path in filter(None, (args.tls_cert, args.tls_key, args.client_ca, args.auth_token_file)):
            if not Path(path).is_file():
                raise KubeletConfigError(f"no such file: {path}")
        labels = _labels(args.node_labels)
        dns = [ip.strip() for item in args.cluster_dns for ip in item.split(",") if ip.strip()]
    except (KubeletConfigError, RuntimeFailure, OSError, ValueError) as err:
        print(f"ketch kubelet: {err}", file=sys.stderr)
        return 2
    from orchestrator.client.component import run_component
    return run_component("kubelet", args.kubeconfig,
                         lambda api: _serve(api, args, runtime, root_dir, labels, dns))


async def _serve(api, args, runtime, root_dir: Path, labels: dict, dns: list[str]) -> None:
    import dataclasses

    import trio

    from orchestrator.kubelet import hostfacts, server
    from orchestrator.kubelet.kubelet import Kubelet, Settings
    facts = hostfacts.host_facts(root_dir, ip=args.node_ip, port=args.port, max_pods=args.max_pods,
                                 runtime_version=_runtime_version(runtime), hostname=args.node_name)
    facts = dataclasses.replace(facts, labels=labels)
    network = _network(runtime, args.node_name, facts.node_ip, root_dir, args.cluster_cidr)
    kubelet = Kubelet(api, runtime, network, Settings(args.node_name, root_dir, dns, args.cluster_domain,
                                                      args.heartbeat_seconds), facts)
    cert, key = (args.tls_cert, args.tls_key) if args.tls_cert else \
        server.self_signed(root_dir / "pki", args.node_name, facts.node_ip)
    context = server.server_context(cert, key, args.client_ca)
    app = server.KubeletServer(kubelet, server.Access(server.load_tokens(args.auth_token_file)), _streams(kubelet))
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve, app, f"{facts.node_ip}:{args.port}", context)
        log.info("event=serving address=%s:%d runtime=%s network=%s", facts.node_ip, args.port, runtime.name,
                 network.mode)
        await kubelet.run()


def _runtime_version(runtime) -> str:
    version = getattr(runtime, "version", "")
    if not version and runtime.name == "runc" and shutil.which("runc"):
        import subprocess
        first = subprocess.run(["runc", "--version"], capture_output=True, text=True).stdout.splitlines()[:1]
        version = first[0].split()[-1] if first else ""
    return f"{runtime.name}://{version or '0'}"


def _streams(kubelet):
    """Contract D's ASGI app for exec/attach/portForward, when the streaming package is there."""
    try:
        from orchestrator.streaming.kubelet import kubelet_app
    except ImportError:
        return None
    from orchestrator.kubelet.streams import PodStreams
    return kubelet_app(PodStreams(kubelet))

