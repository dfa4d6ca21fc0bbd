# Two commands for a newcomer: `make run` (the stack, with a demo) and `make test`.
SHELL  := /bin/bash
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

CONTAINERS := scripts/containers
CHROMIUM   ?= /usr/bin/chromium
# The machine's own RabbitMQ and Postgres, unless AMQP_URL / DATABASE_URL say otherwise.
LOCAL_AMQP_URL     := amqp://guest:guest@127.0.0.1:5672/
LOCAL_DATABASE_URL := postgresql://postgres@127.0.0.1:5432/postgres

.PHONY: broker database browser bench contracts contract-tools docs lock run test unit faults faults-selftest clean-broker lint migrate definitions kubernetes-topology venv compose-tool clean images test-containers compose-up compose-down

# Locked with hashes (requirements*.txt, from requirements*.in by `make lock`): pip refuses
# any file whose hash the lock does not name, the packaging tools included.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-index --no-deps --no-build-isolation --editable .
	touch $(STAMP)

venv: $(STAMP)

## lock: re-lock requirements*.in into requirements*.txt with hashes (after changing a pin)
lock: venv
	$(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	  --index-url https://pypi.org/simple requirements.in -o requirements.txt
	$(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	  --index-url https://pypi.org/simple requirements-dev.in -o requirements-dev.txt

## broker: ready the broker for the provisioning step (scripts/prepare_broker.py): the management plugin
## on this machine's node, else one line saying what to run; run, migrate and test do it first
broker:
	@$(PYTHON) scripts/prepare_broker.py

## database: check the provisioning step can log in to PostgreSQL (scripts/prepare_database.py), else one
## line saying what to run (Debian's asks for a password); run, migrate and test do it first
database:
	@$(PYTHON) scripts/prepare_database.py

## run: start the four services locally against AMQP_URL / DATABASE_URL and show a demo
run: venv broker database
	$(BIN)/python scripts/run_local.py

## test: the whole suite (unit, integration on the real broker and database, container config)
test faults faults-selftest clean-broker: export AMQP_URL ?= $(LOCAL_AMQP_URL)
test faults faults-selftest clean-broker: export DATABASE_URL ?= $(LOCAL_DATABASE_URL)
test: venv compose-tool browser contract-tools broker database
	ARCSERVE_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest

## unit: the pure domain rules only (no broker, no database)
unit: venv
	$(BIN)/python -m pytest tests/unit -q

## bench: the benchmark (tests/bench): throughput, latency, CPU and memory beside its two floors (least work, same counts), median of 3 runs;
## its table and the targets of issue 25 on stdout, test-output/bench/result.json and latency.png (BENCH_ARGS=--quick for a short look, --phases for some)
bench: export AMQP_URL ?= $(LOCAL_AMQP_URL)
bench: export DATABASE_URL ?= $(LOCAL_DATABASE_URL)
bench: venv broker database
	$(BIN)/python -m tests.bench $(BENCH_ARGS)

## faults: the fault-injection suite at full size (500 applications per fault; FAULTS_APPLICATIONS=N), for each
## source of results in turn (FAULTS_FULFILMENT=simulator,back-office,external)
faults: venv broker database
	$(BIN)/python -m tests.faults --applications $${FAULTS_APPLICATIONS:-500} \
	  --fulfilment $${FAULTS_FULFILMENT:-simulator,back-office,external}

## faults-selftest: the fault checker's own test: a clean run passes, each deliberate breakage is caught
faults-selftest: venv broker database
	$(BIN)/python -m tests.faults.selftest --applications $${FAULTS_APPLICATIONS:-35}

## clean-broker: remove what killed test and fault runs left (stale test-*/faults-* topologies, test databases)
clean-broker: venv broker database
	$(BIN)/python -m tests.support.leftovers

## lint: ruff and mypy over the code and the tests, hadolint over the Dockerfiles, shellcheck over the scripts
lint: venv
	$(BIN)/ruff check shared services scripts tests docs/examples
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile deploy/images/*/Dockerfile
	$(BIN)/shellcheck -x $(CONTAINERS)/*.sh scripts/*.sh deploy/images/*/entrypoint.sh .ci/run

## migrate: the one-shot provisioning step (broker users and topology, roles, grants, migrations,
## ARCSERVE_API_KEYS); each service's own URLs go to .run/credentials.env
migrate: venv broker database
	$(BIN)/python -m services.provisioning --env-file .run/credentials.env

## definitions: rewrite deploy/rabbitmq/definitions.json (compose's broker side) from the boundaries
definitions: venv
	$(BIN)/python -m services.provisioning definitions --deterministic --admin arcserve:arcserve \
	  --compose docker-compose.yml > deploy/rabbitmq/definitions.json

## kubernetes-topology: rewrite the same broker side as Messaging Topology Operator resources (deploy/kubernetes/)
kubernetes-topology: venv
	env -u ARCSERVE_TOPOLOGY_PREFIX $(BIN)/python -m services.provisioning kubernetes \
	  > deploy/kubernetes/base/rabbitmq/topology.yaml

# The container-config tests validate docker-compose.yml with a real compose tool.
compose-tool:
	@command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's docker-compose (validates docker-compose.yml; no engine needed)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; \
	  else \
	    echo "install a compose tool first: apt-get install docker-compose (or the Docker Compose v2 plugin)"; exit 1; \
	  fi; }

## contracts: regenerate docs/asyncapi.json (the message catalogue) and docs/openapi.json (the HTTP API); a test fails while they differ
contracts: venv
	$(BIN)/python -m shared.contracts.asyncapi > docs/asyncapi.json
	$(BIN)/python scripts/openapi.py > docs/openapi.json

## docs: regenerate docs/configuration.md's tables (one per process) from the settings models; a test fails while they differ
docs: venv
	$(BIN)/python scripts/configuration.py --write

# The AsyncAPI project's parser validates docs/asyncapi.json in the tests (npm, pinned by its lock).
CONTRACT_TOOLS := tests/contracts/node_modules/.installed
$(CONTRACT_TOOLS): tests/contracts/package.json tests/contracts/package-lock.json
	@command -v npm >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's nodejs and npm (the AsyncAPI parser of the contract tests)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; \
	  else \
	    echo "install Node.js and npm first (Debian: apt-get install nodejs npm)"; exit 1; \
	  fi; }
	cd tests/contracts && npm ci --no-audit --no-fund --silent
	touch $(CONTRACT_TOOLS)

contract-tools: $(CONTRACT_TOOLS)

# The portal's end-to-end tests drive Debian's chromium through Playwright (never a downloaded browser).
# A Japanese font too, so that its screenshots show the menu's words rather than empty boxes.
browser:
	@{ test -x $(CHROMIUM) && fc-list :lang=ja 2>/dev/null | grep -q .; } || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium and a Japanese font (the portal's browser tests)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	  else \
	    echo "install a browser first: apt-get install chromium fonts-noto-cjk (or set CHROMIUM=/path/to/chromium)"; exit 1; \
	  fi; }

# ---- the container path (docker-compose.yml; Docker, or Podman where Docker is missing) ----

## images: under Podman, set it up and build every image from Debian's packages (no registry)
images:
	@. $(CONTAINERS)/env.sh; if [ "$$ARCSERVE_CONTAINER_ENGINE" = podman ]; then \
	  $(CONTAINERS)/podman-setup.sh && $(CONTAINERS)/build-images.sh; \
	else echo "Docker engine: compose builds the app image and pulls the official ones"; fi

## test-containers: the compose stack's scenario, then the integration suite on containers
test-containers: venv compose-tool
	@set -e; step() { echo "── $$1"; local t=$$SECONDS; shift; "$$@"; echo "   ($$((SECONDS - t)) s)"; }; \
	step "images" $(MAKE) --no-print-directory images; \
	. $(CONTAINERS)/env.sh; \
	step "the compose stack ($$ARCSERVE_CONTAINER_ENGINE)" \
	  env -u AMQP_URL -u DATABASE_URL $(BIN)/python -m pytest -m containers tests/containers; \
	step "the integration suite on RabbitMQ and Postgres containers" \
	  env -u AMQP_URL -u DATABASE_URL $(BIN)/python -m pytest tests/integration

## compose-up: the whole stack in containers, then the demo through its published ports
compose-up: venv images
	ARCSERVE_SIM_NEW_DELAY_S=$${ARCSERVE_SIM_NEW_DELAY_S:-2} $(CONTAINERS)/compose.sh up --detach
	$(BIN)/python scripts/demo.py --wait 180 \
	  --intake http://127.0.0.1:$${PUBLISH_PORTAL_PORT:-8084} --status http://127.0.0.1:$${PUBLISH_PORTAL_PORT:-8084}
	@echo "the portal: http://127.0.0.1:$${PUBLISH_PORTAL_PORT:-8084}/ (sign in with acme-demo-key)"
	@echo "the stack keeps running; make compose-down stops it and removes its containers and volume"

## compose-down: stop the compose stack and remove its containers, network and volume
compose-down:
	$(CONTAINERS)/compose.sh down --volumes --remove-orphans

clean:
	rm -rf $(VENV) .run .pytest_cache test-output
