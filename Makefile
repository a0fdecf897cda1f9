# airflow-provider-patsnap: build / test tooling.
#
#   make test              ruff (lint + format check) + mypy + pytest on Airflow 3 (.venv)
#   make test AIRFLOW=2    the same on Airflow 2.11 (.venv-af2); alias: make test-af2
#   make test-fast         the unit tier only (pytest -m unit), for the inner loop
#   make format            ruff format + ruff check --fix
#   make smoke AIRFLOW=3.0 the smoke on an older Airflow 3 line (3.0, 3.1, 3.2; .venv-af30 ...);
#                          make smoke-lines runs all three (CI does)
#
# Venvs are created on demand (uv when available) and pinned by constraints.txt /
# constraints-airflow2.txt / constraints-airflow3.N.txt; a stamp file (<venv>/.installed) keeps
# re-runs quick. It is refreshed when pyproject.toml, the constraints file, scripts/bootstrap.sh or the
# package's __init__.py (its version) change.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

# Older Airflow 3 lines CI smoke-tests (scripts/smoke.py), each in its own venv and constraints file.
SMOKE_LINES := 3.0 3.1 3.2

AIRFLOW ?= 3
ifeq ($(AIRFLOW),2)
  LINE        := af2
  VENV        := .venv-af2
  CONSTRAINTS := constraints-airflow2.txt
else ifeq ($(AIRFLOW),3)
  LINE        := af3
  VENV        := .venv
  CONSTRAINTS := constraints.txt
else ifneq ($(filter $(AIRFLOW),$(SMOKE_LINES)),)
  LINE        := af$(subst .,,$(AIRFLOW))
  VENV        := .venv-$(LINE)
  CONSTRAINTS := constraints-airflow$(AIRFLOW).txt
else
  $(error AIRFLOW must be 2, 3 or one of $(SMOKE_LINES), not '$(AIRFLOW)')
endif

AIRFLOW3_VERSION := 3.3.2
AIRFLOW2_VERSION := 2.11.2
# The newest patch of each smoke line, and the caps its resolve needs: each line declares no upper bound
# on a dependency whose newer releases break it (the constraints file Airflow publishes pins them, but
# these machines cannot fetch it). docs/compatibility.md says what breaks without each cap.
AIRFLOW30_VERSION := 3.0.6
AIRFLOW30_CAPS    := 'universal-pathlib<0.3' 'fastapi<0.118'
AIRFLOW31_VERSION := 3.1.8
AIRFLOW31_CAPS    :=
AIRFLOW32_VERSION := 3.2.2
AIRFLOW32_CAPS    := 'fastapi<0.137' 'svcs<26.2'

PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
BOOTSTRAP   := scripts/bootstrap.sh
PYTEST_ARGS ?=
SOAK_ARGS   ?=
SCALE_ARGS  ?=

# ---- environment for everything that runs Airflow code ---------------------------------------
# Airflow's settings live in scripts/airflow_env.py (shared with tests, the demo and the benchmarks);
# commands that run Airflow code start through it with this line's AIRFLOW_HOME.
AIRFLOW_HOME     := $(CURDIR)/.airflow-home/$(LINE)
WITH_AIRFLOW_ENV := $(PY) scripts/airflow_env.py $(AIRFLOW_HOME) --
export UV_COMPILE_BYTECODE := 1
unexport AIRFLOW_HOME
unexport PYTHONDONTWRITEBYTECODE
unexport AIRFLOW

.PHONY: help venv venv-af2 test test-af2 test-fast lint lint-af2 ruff format mypy pytest package \
        package-check demo bench bench-full bench-scale soak sandbox e2e e2e-local e2e-celery constraints clean distclean ci docs \
        smoke smoke-lines recipes

help: ## list the targets
	@echo "Usage: make <target> [AIRFLOW=2|3] [PYTEST_ARGS=...] [SOAK_ARGS=...]"
	@echo "  AIRFLOW=3 (default) uses .venv (Airflow $(AIRFLOW3_VERSION)); AIRFLOW=2 uses .venv-af2 (Airflow $(AIRFLOW2_VERSION))"
	@echo "  AIRFLOW=3.0|3.1|3.2 uses .venv-af30|31|32 (for make smoke)"
	@echo
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-zA-Z0-9_-]+):.*## (.*)/\1|\2/' \
	  | awk -F'|' '{ printf "  %-13s %s\n", $$1, $$2 }'

# ---- virtual environments ------------------------------------------------------------------------
# The installed package's version (its metadata, what `airflow providers list` shows) is read from
# __init__.py at install time: a venv installed before a version change must be refreshed after it.
VERSION_FILE := airflow_provider_patsnap/__init__.py

.venv/.installed: pyproject.toml constraints.txt $(BOOTSTRAP) $(VERSION_FILE)
	bash $(BOOTSTRAP) venv .venv constraints.txt

.venv-af2/.installed: pyproject.toml constraints-airflow2.txt $(BOOTSTRAP) $(VERSION_FILE)
	bash $(BOOTSTRAP) venv .venv-af2 constraints-airflow2.txt

# .venv-af30/.installed from constraints-airflow3.0.txt, and so on for each smoke line.
.venv-af3%/.installed: pyproject.toml constraints-airflow3.%.txt $(BOOTSTRAP) $(VERSION_FILE)
	bash $(BOOTSTRAP) venv .venv-af3$* constraints-airflow3.$*.txt

venv: .venv/.installed ## create/update .venv (Airflow 3) with the dev extra
venv-af2: .venv-af2/.installed ## create/update .venv-af2 (Airflow 2.11) with the dev extra

# ---- checks ---------------------------------------------------------------------------------------
ruff: $(STAMP) ## ruff check . and ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP) ## ruff format . then ruff check --fix . (what `make ruff` checks)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

mypy: $(STAMP) ## mypy on the package (cache kept per Airflow line)
	$(VENV)/bin/mypy --cache-dir .mypy_cache/$(LINE)

lint: ruff mypy ## ruff (lint + format check) + mypy

lint-af2: ## ruff + mypy against Airflow 2.11
	@$(MAKE) --no-print-directory lint AIRFLOW=2

pytest: $(STAMP) ## pytest only (PYTEST_ARGS=... passed through); exit 5 (no tests) fails
	@echo "== pytest on Airflow $$($(PY) -c 'import importlib.metadata as m; print(m.version("apache-airflow"))') ($(VENV), AIRFLOW_HOME=$(AIRFLOW_HOME))"
	@rc=0; $(WITH_AIRFLOW_ENV) $(PY) -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "ERROR: pytest collected no tests (exit 5): failing" >&2; exit 1; fi; \
	exit $$rc

test: ## ruff check + format check, mypy, then pytest (AIRFLOW=2 for Airflow 2.11)
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory pytest

test-af2: ## make test AIRFLOW=2
	@$(MAKE) --no-print-directory test AIRFLOW=2

test-fast: ## the unit tier only (pytest -m unit): no lint, no sockets, seconds
	@$(MAKE) --no-print-directory pytest PYTEST_ARGS="-m unit $(PYTEST_ARGS)"

smoke: $(STAMP) ## imports, provider info, unit tier, every example DAG (AIRFLOW=3.0, 3.1 or 3.2)
	env -u AIRFLOW_HOME $(PY) scripts/smoke.py

smoke-lines: ## make smoke on Airflow 3.0, 3.1 and 3.2 (what CI runs)
	@for line in $(SMOKE_LINES); do $(MAKE) --no-print-directory smoke AIRFLOW=$$line || exit 1; done

# ---- packaging --------------------------------------------------------------------------------------
package: $(STAMP) ## build the sdist and the wheel into dist/
	rm -rf dist
	"$$(bash $(BOOTSTRAP) uv)" build --out-dir dist
	rm -rf build *.egg-info

package-check: ## build both artifacts from the tracked files, check them, pip-install the wheel in a fresh venv
	@$(MAKE) --no-print-directory pytest PYTEST_ARGS="tests/system/test_packaging.py tests/system/test_release_artifacts.py $(PYTEST_ARGS)"

# ---- things other engineers own; these targets only make sure the venv exists ---------------------
demo: $(STAMP) ## bash scripts/demo.sh (its own fresh AIRFLOW_HOME, .airflow-home/demo)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/demo.sh

bench: $(STAMP) ## bash benchmarks/run.sh (about 18 minutes; writes benchmarks/RESULTS.md)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(WITH_AIRFLOW_ENV) bash benchmarks/run.sh

bench-full: $(STAMP) ## make bench with QPS 20 and 100 too, the QPS-100 task beside the NDJSON reference (about 25 minutes)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" FULL=1 $(WITH_AIRFLOW_ENV) bash benchmarks/run.sh

bench-scale: $(STAMP) ## 10^5 and 10^7 ids from PostgreSQL in 16 shards: peak RSS, XCom size, cost per patent
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(WITH_AIRFLOW_ENV) $(PY) benchmarks/scale.py $(SCALE_ARGS)

soak: $(STAMP) ## python benchmarks/soak.py $(SOAK_ARGS)
	$(WITH_AIRFLOW_ENV) $(PY) benchmarks/soak.py $(SOAK_ARGS)
sandbox: $(STAMP) ## python -m airflow_provider_patsnap.sandbox (local fake PatSnap API)
	$(WITH_AIRFLOW_ENV) $(PY) -m airflow_provider_patsnap.sandbox

e2e: e2e-local e2e-celery ## make e2e-local, then make e2e-celery (what CI runs)

e2e-local: $(STAMP) ## a real Airflow 3 deployment on loopback, checked end to end (artifacts: .e2e-artifacts/)
ifeq ($(AIRFLOW),2)
	$(error make e2e runs Airflow 3 only (the scripts drive Airflow 3's REST API and UI))
endif
	VENV=$(VENV) bash scripts/e2e/run.sh

# The CeleryExecutor run needs the celery provider, which the project venvs leave out: its own venv,
# pinned by constraints-celery.txt (Airflow plus these and their dependencies). The amazon provider and
# s3fs give Airflow's ObjectStoragePath its s3:// scheme; moto's S3 (with flask, which its server needs)
# is the object store both workers reach over HTTP, as they would a real bucket.
CELERY_REQUIREMENTS := apache-airflow-providers-celery 'apache-airflow-providers-amazon[s3fs]' 'moto[s3]' flask flask-cors
# celery 5.7 removed celery.backends.database.retry, which the celery provider (3.26.0) imports: every
# `airflow celery worker` then fails to start. Without the floor, uv meets that cap with a years-old provider.
CELERY_CAPS         := 'celery<5.7' 'apache-airflow-providers-celery>=3.26'
.venv-celery/.installed: pyproject.toml constraints-celery.txt $(BOOTSTRAP) $(VERSION_FILE)
	bash $(BOOTSTRAP) venv .venv-celery constraints-celery.txt $(CELERY_REQUIREMENTS)

e2e-celery: .venv-celery/.installed ## 16 SQL-sourced shards on 2 Celery workers sharing no disk: Redis-shared QPS vs a pool (.e2e-artifacts-celery/)
	@command -v redis-server >/dev/null || { echo "e2e-celery: apt-get install redis-server" >&2; exit 1; }
	@rm -rf .e2e-artifacts-celery; start=$$SECONDS; rc=0; \
	timeout --signal=TERM --kill-after=60 $${E2E_BUDGET_SECONDS:-600} env -u AIRFLOW_HOME PYTHONPATH=$(CURDIR) \
	  .venv-celery/bin/python -u scripts/e2e/celery_main.py --artifacts .e2e-artifacts-celery || rc=$$?; \
	echo "== make e2e-celery: $$( ((rc == 0)) && echo passed || echo "FAILED (exit $$rc)") in $$((SECONDS - start)) s;" \
	  "summary: .e2e-artifacts-celery/summary.txt"; exit $$rc

# The cloud warehouse recipes (docs/recipes/*_dag.py) import the Snowflake, Google, Amazon and Databricks
# providers, which the project venvs leave out (hundreds of MB): their own venv, pinned by
# constraints-recipes.txt (constraints.txt's Airflow plus those providers and their dependencies).
RECIPE_PROVIDERS := apache-airflow-providers-snowflake apache-airflow-providers-google \
                    apache-airflow-providers-amazon apache-airflow-providers-databricks
RECIPES_PY       := .venv-recipes/bin/python

.venv-recipes/.installed: pyproject.toml constraints-recipes.txt $(BOOTSTRAP) $(VERSION_FILE)
	bash $(BOOTSTRAP) venv .venv-recipes constraints-recipes.txt $(RECIPE_PROVIDERS)

recipes: .venv-recipes/.installed ## the warehouse recipe DAGs parse (DagBag) with their providers (.venv-recipes)
	PATSNAP_RECIPES=1 $(RECIPES_PY) scripts/airflow_env.py $(CURDIR)/.airflow-home/recipes -- \
	  $(RECIPES_PY) -m pytest tests/repo/test_recipe_dags.py $(PYTEST_ARGS)

# ---- documentation site ---------------------------------------------------------------------------
.venv-docs/.installed: constraints-docs.txt scripts/docs.sh
	bash scripts/docs.sh venv

docs: .venv-docs/.installed ## build the docs site into site/ (strict), then check it in headless Chromium
	bash scripts/docs.sh build
	bash scripts/docs.sh check .docs-layout

# ---- maintenance ----------------------------------------------------------------------------------
constraints: ## re-resolve every constraints file from PyPI (then: make venv venv-af2)
	bash $(BOOTSTRAP) resolve $(AIRFLOW3_VERSION) constraints.txt
	bash $(BOOTSTRAP) resolve $(AIRFLOW2_VERSION) constraints-airflow2.txt
	bash $(BOOTSTRAP) resolve $(AIRFLOW30_VERSION) constraints-airflow3.0.txt $(AIRFLOW30_CAPS)
	bash $(BOOTSTRAP) resolve $(AIRFLOW31_VERSION) constraints-airflow3.1.txt $(AIRFLOW31_CAPS)
	bash $(BOOTSTRAP) resolve $(AIRFLOW32_VERSION) constraints-airflow3.2.txt $(AIRFLOW32_CAPS)
	bash $(BOOTSTRAP) resolve $(AIRFLOW3_VERSION) constraints-celery.txt $(CELERY_REQUIREMENTS) $(CELERY_CAPS)
	bash $(BOOTSTRAP) resolve $(AIRFLOW3_VERSION) constraints-recipes.txt $(RECIPE_PROVIDERS)

ci: ## what CI runs (.ci/run)
	bash .ci/run

clean: ## remove caches, build output, the e2e artifacts and the local AIRFLOW_HOMEs (keeps the venvs)
	rm -rf .airflow-home .e2e-artifacts .e2e-artifacts-celery .docs-layout .mypy_cache .ruff_cache .pytest_cache build dist site *.egg-info
	find . -path './.venv*' -prune -o \
	  -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean ## clean, and remove the venvs too
	rm -rf .venv .venv-af2 .venv-af30 .venv-af31 .venv-af32 .venv-celery .venv-recipes .venv-e2e .venv-tools .venv-docs
