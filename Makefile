# modelyard — one entry point for every routine task. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
SOURCES := runtime operator cli tests hack examples

.DEFAULT_GOAL := help

help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[runtime,operator,cli,dev]"
	touch $@

# torch (several GB of CUDA wheels) only for the export pipeline and its tests.
$(VENV)/.installed-export: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[runtime,operator,cli,dev,export]"
	touch $@

export-deps: $(VENV)/.installed-export ## install the export extra (torch) into .venv

venv: $(VENV)/.installed ## create .venv and install modelyard with the runtime, operator and dev extras

fmt: venv ## format the code
	$(BIN)/ruff format $(SOURCES)
	$(BIN)/ruff check --fix $(SOURCES)

lint: venv ## ruff format check + ruff lint
	$(BIN)/ruff format --check $(SOURCES)
	$(BIN)/ruff check $(SOURCES)

typecheck: venv ## mypy --strict over the packages and the tests
	$(BIN)/mypy

imports: venv ## import-linter layer contracts
	$(BIN)/lint-imports

test-unit: venv ## fast tests: codecs, batching, settings, in-process server
	$(BIN)/pytest tests/unit tests/contract -q

test: venv export-deps cluster-build node-deps ## every test tier (the test command CI runs; builds the cluster binaries once, installs torch for the export tests and the real node's packages)
	$(BIN)/pytest tests -q

check: lint typecheck imports test ## format, lint, types, import layers, tests

bench-runtime: venv ## modelyard (defaults and tuned) vs raw onnxruntime vs KServe, MLServer, PyTriton, BentoML, naive servers, then the no-flag targets interleaved (~30 min; writes BENCHMARKS.md)
	$(PY) -m hack.bench_runtime --out BENCHMARKS.md
	$(PY) -m hack.bench_runtime --targets --out BENCHMARKS.md

demo: venv cluster-build ## local cluster with a real node, the operator installed with the Helm chart, a ModelDeployment rolled out v1 -> v2 as a canary; prints where to see the dashboards' queries and alerts
	-hack/cluster/node-deps.sh  # as root; without it the demo falls back to a kwok-only cluster
	$(PY) -m hack.demo up

demo-down: venv ## stop the demo's operator, runtime and cluster by process id
	$(PY) -m hack.demo down

demo-runtime: venv ## serve a demo model locally and send it requests over REST v2 and TF-Serving v1
	$(PY) -m hack.demo_runtime

bench-operator: venv cluster-build ## 1,000 ModelDeployments (100 mid-canary) on the local cluster: apply -> Deployment latency, RSS
	$(PY) -m hack.bench_operator

bench-faults: venv cluster-build ## 1,000 ModelDeployments through an apiserver restart, an etcd outage, the operator kill -9'd and a node lost: time to converge, losses, RSS (writes RELIABILITY.md; ~30 min)
	$(PY) -m hack.bench_faults

bench-rollouts: venv cluster-build node-deps ## canary promotion and rollback on real pods with Prometheus: reaction time, failed requests (writes BENCHMARKS.md)
	$(PY) -m hack.bench_rollouts

bench-autoscaling: venv cluster-build node-deps ## a latency target on real pods with prometheus-adapter and the real HPA: load step -> HPA decision -> pods Ready -> p99 back under target (writes BENCHMARKS.md)
	$(PY) -m hack.bench_autoscaling

bench-export: export-deps ## quantize, prune, factorize, distill: size, agreement and latency on the examples (~5 min; writes BENCHMARKS.md)
	$(PY) -m hack.bench_export

argocd: venv ## regenerate deploy/argocd's argocd-cm patch and Helm values from the Lua files
	$(PY) -m hack.gen_argocd

crds: venv ## regenerate crds/ and the chart's CRD from the pydantic models
	$(PY) -m modelyard_operator.api.crdgen --write

dashboards: venv ## regenerate dashboards/*.json and deploy/grafana/dashboards-configmap.yaml from hack/grafana/
	$(PY) -m hack.dashboards --write

dashboards-preview: venv cluster-build ## draw docs/dashboards/*.png from the live setup (local cluster, Prometheus, operator, runtime pods, traffic; ~8 min)
	$(PY) -m hack.grafana.preview

alerts: venv ## regenerate the Prometheus rules and PrometheusRule in deploy/prometheus/ from hack/alerts.py
	$(PY) -m hack.alerts --write

chart: venv ## copy into charts/modelyard what it takes from elsewhere (RBAC rules, dashboards, alert and adapter rules) and regenerate its values schema and README
	$(PY) -m hack.chart --write

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

.PHONY: argocd bench-faults bench-rollouts bench-autoscaling test-keda help venv export-deps bench-export fmt lint typecheck imports test-unit test check bench-runtime bench-operator demo demo-down demo-runtime crds chart dashboards dashboards-preview alerts clean proto cluster-build cluster-up cluster-down node-deps images

test-keda: venv cluster-build ## engine keda end to end: builds KEDA's operator and metrics adapter (~15 min cold) and proves a scale-out with them on the local cluster
	hack/cluster/build-autoscaling.sh --with-keda
	MODELYARD_KEDA=1 $(BIN)/pytest tests/integration/cluster/test_keda.py -q -s

cluster-build: ## build the pinned etcd, Kubernetes, kwok, helm, Prometheus, promtool and prometheus-adapter binaries (and fetch KEDA's CRDs) into ~/.cache/modelyard (once)
	hack/cluster/build.sh --with-prometheus
	hack/cluster/build-autoscaling.sh

node-deps: ## install containerd, runc, CNI plugins, podman, debootstrap for the real node (tier D; root, Debian packages)
	hack/cluster/node-deps.sh

images: venv node-deps ## build Dockerfile.runtime and Dockerfile.operator with podman on the local base image
	$(PY) -m hack.cluster.images build runtime
	$(PY) -m hack.cluster.images build operator

TIER ?= C
cluster-up: venv cluster-build ## start the local cluster (TIER=D adds a real kubelet node) and Prometheus in the background; kubeconfig at .local/cluster/kubeconfig
	$(PY) -m hack.cluster.localcluster up --dir .local/cluster --tier $(TIER) --prometheus

cluster-down: venv ## stop the local cluster by process id
	$(PY) -m hack.cluster.localcluster down --dir .local/cluster

proto: venv ## regenerate the gRPC stubs from runtime/modelyard_runtime/protocol/pb/inference.proto
	$(PY) -m hack.gen_proto
