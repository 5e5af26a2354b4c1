# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools
BUF := $(TOOLS)/node_modules/.bin/buf
BUF_VERSION := 1.75.0
STAMP := $(VENV)/.installed
GEN_DIRS := clients/python/seatclient/v1 seatd/cloud/v1

.PHONY: run test proto check-proto buf-lint lint bench chaos clean systemd-tools node-tools node-client browser catalogs translations screenshots

$(STAMP): pyproject.toml clients/python/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e clients/python -e '.[dev]'
	touch $@

$(BUF):
	mkdir -p $(TOOLS)
	npm install --silent --no-save --no-fund --no-audit --prefix $(TOOLS) @bufbuild/buf@$(BUF_VERSION)

# `make run ARGS="--dev-seats 2 --trusted-key vendor.pub"`: any `seatd serve` flag; a flag in
# ARGS wins over the same one here. RUN_DIR holds the state and the admin socket.
RUN_DIR ?= var
ARGS ?=
# The web console, on loopback only (WEB= turns it off).
WEB ?= 127.0.0.1:7180
run: $(STAMP) catalogs
	@echo 'seatctl and seat, from another terminal, after pasting this line:'
	@echo '  export SEATD_ADMIN_SOCKET="$(abspath $(RUN_DIR))/admin.sock" PATH="$(abspath $(VENV))/bin:$$PATH"'
	@if [ -n "$(WEB)" ]; then echo 'Web console: http://$(WEB)/ (log in with the one-time link seatctl console prints)'; fi
	@exec $(VENV)/bin/seatd serve --state-dir $(RUN_DIR) --listen 127.0.0.1:7117 \
		--admin-socket $(RUN_DIR)/admin.sock --web-listen "$(WEB)" $(ARGS)

test: $(STAMP) catalogs check-proto buf-lint lint systemd-tools node-client browser
	$(PY) -m pytest -q

proto: $(STAMP)
	$(PY) proto/generate.py .

# The committed generated code must be exactly what `make proto` writes.
check-proto: $(STAMP)
	rm -rf $(VENV)/genproto && $(PY) proto/generate.py $(VENV)/genproto
	for d in $(GEN_DIRS); do \
		diff -r -x __pycache__ $(VENV)/genproto/$$d $$d \
		|| { echo "generated code in $$d differs from proto/: run 'make proto' and commit"; exit 1; }; \
	done

# The unit-file tests need systemd-analyze (Debian's systemd package).
systemd-tools:
	@command -v systemd-analyze >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null; }

# The TypeScript client (clients/node): node and npm from Debian when missing, its packages
# exactly as package-lock.json pins them, into clients/node/node_modules.
NODE_DIR := clients/node
NODE_STAMP := $(NODE_DIR)/node_modules/.installed
node-tools:
	@command -v npm >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }

$(NODE_STAMP): $(NODE_DIR)/package-lock.json | node-tools
	cd $(NODE_DIR) && npm ci --no-fund --no-audit --loglevel=error
	touch $@

# Types generated from proto/, tsc --strict, then the client's unit tests (node --test); the
# end-to-end tests (tests/e2e/test_node_client.py) drive the built CLI under pytest.
node-client: $(NODE_STAMP)
	cd $(NODE_DIR) && npm run --silent build && npm test --silent

# The web console's messages: `make translations` extracts them from the templates and the
# pages' code and merges them into each catalog (then translate the new French entries);
# `make catalogs` compiles the catalogs the daemon loads (not committed: built from the .po).
CATALOGS := seatd/web/catalogs
MO := $(CATALOGS)/fr/LC_MESSAGES/messages.mo
catalogs: $(MO)
$(MO): $(CATALOGS)/fr/LC_MESSAGES/messages.po $(STAMP)
	$(VENV)/bin/pybabel compile --domain messages --directory $(CATALOGS) --statistics

translations: $(STAMP)
	$(VENV)/bin/pybabel extract --mapping seatd/web/babel.cfg --keywords _ --keywords N_ --keywords ngettext:1,2 \
		--sort-by-file --no-wrap --project seatd --output $(CATALOGS)/messages.pot .
	$(VENV)/bin/pybabel update --domain messages --input-file $(CATALOGS)/messages.pot \
		--output-dir $(CATALOGS) --no-wrap --no-fuzzy-matching --ignore-obsolete

# The web console's browser tests drive Debian's chromium through its chromedriver (Selenium);
# nothing downloads a browser at test time. Fonts so that screenshots show text in both languages.
browser:
	@{ command -v chromium && command -v chromedriver; } >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
		chromium chromium-driver fonts-dejavu-core >/dev/null; }

# The README's screenshots: the browser tests' full-page captures of the console (var/screenshots).
README_SHOTS := overview-1280 sessions-1280 usage-1280 journal-1280 sessions-390 sessions-fr-390
screenshots: $(STAMP) catalogs browser
	$(PY) -m pytest -q tests/e2e/test_web_console.py -k "uploaded or captured or french"
	mkdir -p docs/screenshots
	for s in $(README_SHOTS); do cp var/screenshots/$$s.png docs/screenshots/; done

# The peer the bench measures seatd against (and the store of cluster mode): Debian's etcd.
.PHONY: etcd-server
etcd-server:
	@command -v etcd >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null; }

# The store tests start a 3-member etcd cluster (tests/etcd.py).
test: etcd-server

buf-lint: $(BUF)
	$(BUF) lint proto

lint: $(STAMP)
	$(VENV)/bin/ruff check seatd clients tests proto
	$(VENV)/bin/mypy

# Benchmarks: not part of `make test`. Prints a table, writes var/bench.json.
bench: $(STAMP) etcd-server
	$(PY) -m tests.bench.run

# Fault injection: `make chaos` (100 cycles; SEED=... replays a run, CYCLES=... sizes it).
# Prints a table and exits 1 on any violation of the model (tests/chaos/harness.py).
SEED ?=
CYCLES ?= 100
ATTACKS ?= 1
chaos: $(STAMP)
	SEED=$(SEED) CYCLES=$(CYCLES) ATTACKS=$(ATTACKS) $(PY) -m tests.chaos.run

# Cluster mode's random faults against a model (tests/e2e/test_cluster_chaos.py): `make test`
# runs a slice; this runs EXAMPLES state machines of up to STEPS steps each.
EXAMPLES ?= 20
STEPS ?= 12
.PHONY: cluster-chaos
cluster-chaos: $(STAMP) etcd-server
	SEATD_CLUSTER_CHAOS_EXAMPLES=$(EXAMPLES) SEATD_CLUSTER_CHAOS_STEPS=$(STEPS) \
		$(PY) -m pytest -q -s tests/e2e/test_cluster_chaos.py

clean:
	rm -rf $(VENV) $(TOOLS) var $(NODE_DIR)/node_modules $(NODE_DIR)/dist
