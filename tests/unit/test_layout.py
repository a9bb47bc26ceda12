"""The dependency direction of the house (README, "Layout"), checked on the source's imports:

    kvstore  <-  orchestrator.api  <-  orchestrator.apiserver / orchestrator.client  <-  components
                                                                     netproxy  ->  orchestrator.client

A change that makes an arrow point the wrong way fails here, naming the file and the import.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("orchestrator/scheduler", "orchestrator/controllers", "orchestrator/hollow", "orchestrator/kubelet",
              "orchestrator/cloud")


def imports(path: Path) -> list[str]:
    """Every module path imported by a file (absolute; relative imports resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found += [f"{base}.{alias.name}" if base else alias.name for alias in node.names]
    return found


def sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def offenders(files: list[Path], forbidden) -> list[str]:
    return [f"{path.relative_to(ROOT)} imports {name}" for path in files for name in imports(path) if forbidden(name)]


def within(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def test_kvstore_imports_nothing_of_the_rest():
    assert offenders(sources("kvstore"), lambda n: within(n, "orchestrator", "netproxy", "tests", "bench")) == []


def test_orchestrator_api_is_pure_standard_library():
    def foreign(name: str) -> bool:
        top = name.split(".")[0]
        return not within(name, "orchestrator.api") and top not in sys.stdlib_module_names and top != "__future__"
    assert offenders(sources("orchestrator/api"), foreign) == []


def test_the_container_shim_needs_only_the_standard_library():
    """The kubelet starts it as a file in isolated mode (`python -I -S shim.py`), without site-packages."""
    shim = ROOT / "orchestrator/kubelet/runtime/shim.py"
    assert offenders([shim], lambda n: n.split(".")[0] not in sys.stdlib_module_names | {"__future__"}) == []


def test_nothing_outside_the_api_server_imports_it():
    outside = [p for p in sources("orchestrator", "netproxy", "kvstore", "bench")
               if "apiserver" not in p.relative_to(ROOT).parts and p != ROOT / "orchestrator" / "cli.py"]
    assert offenders(outside, lambda n: within(n, "orchestrator.apiserver")) == []


def test_the_api_server_uses_only_the_store_the_object_layer_and_the_http_connection():
    allowed = ("kvstore", "orchestrator.api", "orchestrator.apiserver", "orchestrator.client.transport",
               "orchestrator.metrics", "orchestrator.streaming")
    assert offenders(sources("orchestrator/apiserver"),
                     lambda n: within(n, "orchestrator", "netproxy") and not within(n, *allowed)) == []


def test_the_streaming_protocols_import_nothing_else_of_ketch():
    """The API server (relay) and the kubelet (endpoints) both use orchestrator.streaming: it must
    not lean on either."""
    assert offenders(sources("orchestrator/streaming"), lambda n: within(n, "kvstore", "orchestrator", "netproxy")
                     and not within(n, "orchestrator.streaming")) == []


def test_components_and_netproxy_talk_to_the_cluster_only_through_the_client():
    files = sources(*[c for c in COMPONENTS if (ROOT / c).exists()], "orchestrator/client", "netproxy")

    def forbidden(name: str) -> bool:
        # the lab cloud controller reads the cluster file (its "cloud"): that one lab module only
        return within(name, "kvstore", "orchestrator.apiserver", "orchestrator.lab") and \
            not within(name, "orchestrator.lab.config")
    assert offenders(files, forbidden) == []


def test_the_checker_finds_a_wrong_arrow(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "orchestrator" / "scheduler").mkdir(parents=True)
    bad = tmp_path / "orchestrator" / "scheduler" / "bad.py"
    bad.write_text("from orchestrator.apiserver import server\nfrom ..api import pods\nimport os\n")
    assert imports(bad) == ["orchestrator.apiserver.server", "orchestrator.api.pods", "os"]
    assert offenders([bad], lambda n: within(n, "orchestrator.apiserver")) == [
        "orchestrator/scheduler/bad.py imports orchestrator.apiserver.server"]
