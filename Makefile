# Two commands for a newcomer: `make run` (the stack, with a demo) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test unit faults lint migrate venv compose-tool clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

## run: start the four services locally against AMQP_URL / DATABASE_URL and show a demo
run: venv
	$(BIN)/python scripts/run_local.py

## test: the whole suite (unit, integration on the real broker and database, container config)
test: venv compose-tool
	$(BIN)/python -m pytest

## unit: the pure domain rules only (no broker, no database)
unit: venv
	$(BIN)/python -m pytest tests/unit -q

## faults: the fault-injection suite at full size (500 applications per fault; FAULTS_APPLICATIONS=N)
faults: venv
	$(BIN)/python -m tests.faults --applications $${FAULTS_APPLICATIONS:-500}

## lint: ruff over the code and the tests
lint: venv
	$(BIN)/ruff check shared services scripts tests

## migrate: apply database migrations and seed ARCSERVE_API_KEYS
migrate: venv
	$(BIN)/python -m shared.db.migrate

# The container-config tests validate docker-compose.yml with a real compose tool.
compose-tool:
	@command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's docker-compose (validates docker-compose.yml; no engine needed)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; \
	  else \
	    echo "install a compose tool first: apt-get install docker-compose (or the Docker Compose v2 plugin)"; exit 1; \
	  fi; }

clean:
	rm -rf $(VENV) .run .pytest_cache
