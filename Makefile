# HWcollab Opportunities: `make run` starts the embedded stack, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# A fresh machine may lack uv: `make install` adds it with pip, then runs it as a module.
UV ?= $(shell command -v uv 2>/dev/null || echo python3 -m uv)
export DEBIAN_FRONTEND := noninteractive
# The Apache Kafka broker of the embedded stack: jars fetched by Maven from the version pinned in
# kafka/pom.xml, kept per version in the user's cache (hwcollab_cli.components.kafka_libs).
KAFKA_VERSION := $(shell sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' kafka/pom.xml)
KAFKA_LIBS ?= $(or $(HWCOLLAB_KAFKA_LIBS),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/hwcollab/kafka-$(KAFKA_VERSION))

.PHONY: help install kafka-broker run test lint fmt bench bench-quick clean audit

help:
	@echo "make install      Python (uv), Node (MailDev), Apache Kafka (Java 17+, Maven) and Chromium"
	@echo "make run          the embedded stack and the three services in the foreground"
	@echo "make test         the whole test suite against real processes"
	@echo "make lint | fmt   ruff and mypy | ruff format"
	@echo "make bench | bench-quick   benchmarks"
	@echo "make audit        known vulnerabilities in the locked dependencies (pip-audit; AUDIT_REQUIRED=1 fails when offline)"
	@echo "make clean        remove the embedded stack's data (HWCOLLAB_DATA_DIR, default var/)"

install: node_modules/.installed kafka-broker
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv || \
		python3 -m pip install --quiet --break-system-packages uv
	$(UV) sync --frozen --all-packages --quiet
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ]; then \
		echo "installing Chromium for the browser tests"; \
		apt-get install -y -qq chromium >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq chromium; }; \
	fi

# Java 17+ and Maven: installed with apt-get when missing and running as root, else a clear stop.
kafka-broker:
	@if { ! command -v java || ! command -v mvn; } >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing Java 17 and Maven for the Kafka broker"; \
		apt-get install -y -qq openjdk-17-jre-headless maven >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless maven; }; \
	fi
	@command -v java >/dev/null || { echo "Kafka needs Java 17 or newer: install a JDK/JRE (e.g. openjdk-17-jre-headless)"; exit 1; }
	@version=$$(java -XshowSettings:properties -version 2>&1 | sed -n 's/.*java.specification.version = //p'); \
		if [ "$${version%%.*}" -lt 17 ] 2>/dev/null || [ -z "$$version" ]; then \
		echo "Kafka needs Java 17 or newer; this java is $${version:-of unknown version}"; exit 1; fi
	@command -v mvn >/dev/null || { echo "fetching the Kafka broker needs Maven 3 (mvn): install it (e.g. apt-get install maven)"; exit 1; }
	@if [ ! -f "$(KAFKA_LIBS)/.complete" ]; then \
		echo "fetching Apache Kafka $(KAFKA_VERSION) with Maven into $(KAFKA_LIBS)"; \
		rm -rf "$(KAFKA_LIBS).partial" && \
		mvn -q -B -f kafka/pom.xml dependency:copy-dependencies -DincludeScope=runtime \
			-DoutputDirectory="$(KAFKA_LIBS).partial" && \
		rm -rf "$(KAFKA_LIBS)" && mv "$(KAFKA_LIBS).partial" "$(KAFKA_LIBS)" && \
		touch "$(KAFKA_LIBS)/.complete"; \
	fi

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

run: install
	$(UV) run hwcollab stack up

test: install
	$(UV) run pytest

lint: install
	$(UV) run ruff format --check . && $(UV) run ruff check . && $(UV) run mypy schemas/src common/src cli/src testing/src services/subscriber/src services/employer/src services/notifier/src \
		schemas/tests common/tests services/subscriber/tests services/employer/tests services/notifier/tests tests

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
