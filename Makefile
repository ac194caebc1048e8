# HWcollab Opportunities: `make run` starts the embedded stack, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# A fresh machine may lack uv: `make install` adds it with pip, then runs it as a module.
UV ?= $(shell command -v uv 2>/dev/null || echo python3 -m uv)
export DEBIAN_FRONTEND := noninteractive

.PHONY: help install run test lint fmt bench bench-quick clean audit

help:
	@echo "make install      Python (uv), Node (MailDev) and Chromium dependencies"
	@echo "make run          the embedded stack and the three services in the foreground"
	@echo "make test         the whole test suite against real processes"
	@echo "make lint | fmt   ruff and mypy | ruff format"
	@echo "make bench | bench-quick   benchmarks"
	@echo "make audit        known vulnerabilities in the locked dependencies (pip-audit; AUDIT_REQUIRED=1 fails when offline)"
	@echo "make clean        remove the embedded stack's data (HWCOLLAB_DATA_DIR, default var/)"

install: node_modules/.installed
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv || \
		python3 -m pip install --quiet --break-system-packages uv
	$(UV) sync --frozen --all-packages --quiet
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ]; then \
		echo "installing Chromium for the browser tests"; \
		apt-get install -y -qq chromium >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq chromium; }; \
	fi

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

run: install
	$(UV) run hwcollab stack up

test: install
	$(UV) run pytest

lint: install
	$(UV) run ruff format --check . && $(UV) run ruff check . && $(UV) run mypy schemas/src common/src cli/src testing/src services/subscriber/src services/employer/src services/notifier/src

fmt: install
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

bench: install
	$(UV) run python -m bench

bench-quick: install
	$(UV) run python -m bench --quick

# Skipped, with the reason, where no vulnerability service answers (see tests/security/test_dependency_audit.py).
audit: install
	$(UV) run pytest tests/security/test_dependency_audit.py -q -rs -p no:cacheprovider

clean:
	rm -rf "$${HWCOLLAB_DATA_DIR:-var}"
