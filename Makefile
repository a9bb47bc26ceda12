# Two commands: `make test` and `make up` (see README). Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
PYTEST_ARGS ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# What runs containers, pod networks and the proxy (installed by `make up`/`make test` as root).
SYSTEM_PACKAGES := python3-venv iproute2 nftables iptables conntrack runc busybox-static etcd-server etcd-client

.PHONY: test up system bench-apply clean

system:
	@if [ "$$(id -u)" = 0 ] && ! dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1; then \
		echo "installing $(SYSTEM_PACKAGES)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			$(SYSTEM_PACKAGES) >/dev/null; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall when the project metadata changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

test: system $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# A lab cluster (3 control planes, 2 workers; network namespaces as root, loopback otherwise) with
# a short demo; it stays up: `ketch down --dir .ketch` (or .venv/bin/ketch down) stops it.
up: system $(STAMP)
	$(BIN)/ketch up --dir .ketch --demo --detach

bench-apply: $(STAMP)
	$(BIN)/python bench/kv_apply.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
