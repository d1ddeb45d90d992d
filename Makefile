# Batchline — the two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
WEBSTAMP := web/node_modules/.installed
OIDCSTAMP := tests/identity/oidc_provider/node_modules/.installed

.PHONY: install web-assets browser test-services demo test test-fast lint bench clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# setuptools' notes about editable installs are for packagers, not for someone running the demo
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# Front-end packages (bpmn-js, form-js, Swagger UI) come from npm, never from the repo.
web-assets: $(WEBSTAMP)

# npm ci copies the viewer files and bundles the recipe editor (web/build-editor.js, esbuild)
$(WEBSTAMP): web/package.json web/package-lock.json web/build-editor.js $(wildcard web/static/ui/recipes/src/*)
	cd web && npm ci --no-audit --no-fund
	cd web && npm run --silent build
	touch $@

# Debian's chromium for the browser tests (Playwright cannot download a browser here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; }

# Debian's OpenLDAP server and tools: the directory sign-in tests start their own slapd
# on a free port with a seeded directory (tests/identity), never the system's.
test-services: $(OIDCSTAMP)
	@command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ] || { \
	  echo "installing Debian slapd and ldap-utils for the directory tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slapd ldap-utils >/dev/null) ; }

demo: install web-assets
	$(BIN)/batchline demo

# ruff (lint + format check), mypy on engine/ and forms/, import-linter contracts
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# the real OIDC provider of the OIDC tests (panva's oidc-provider, pinned; Node 20+)
$(OIDCSTAMP): tests/identity/oidc_provider/package.json tests/identity/oidc_provider/package-lock.json
	cd tests/identity/oidc_provider && npm ci --no-audit --no-fund
	touch $@

test: install web-assets browser test-services lint
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow and not browser" -x -q

bench: install
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) var web/node_modules web/static/vendor .pytest_cache
