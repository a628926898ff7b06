# cautionflow: `make demo` and `make test` work from a fresh clone with only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed-stamp
AS_OF ?= $(shell date +%Y-%m-%d)

export CAUTIONFLOW_HOME := $(CURDIR)
export PATH := $(BIN):$(PATH)

# Airflow for the demo: SQLite metadata under var/airflow, LocalExecutor, this repo's DAGs.
# With CAUTIONFLOW_DB=postgresql://user@host:port (a PostgreSQL server), Airflow's metadata and the
# register live on that server instead, as in production: `python -m cautionflow.demo.postgres`
# creates the databases cautionflow_airflow and cautionflow_register and writes the environment
# (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN, AIRFLOW_CONN_CAUTIONFLOW_REGISTER, CAUTIONFLOW_REGISTER_URL)
# to var/airflow/postgres.env, which `env` applies over the SQLite defaults below.
AIRFLOW_ENV = AIRFLOW_HOME=$(CURDIR)/var/airflow \
	AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__PLUGINS_FOLDER=$(CURDIR)/plugins \
	AIRFLOW__CORE__LOAD_EXAMPLES=False \
	AIRFLOW__CORE__EXECUTOR=LocalExecutor \
	AIRFLOW__CORE__PARALLELISM=4 \
	AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:///$(CURDIR)/var/airflow/airflow.db \
	AIRFLOW_VAR_CAUTIONFLOW_CONFIG=include/config/cautionflow.demo.yaml \
	$(if $(CAUTIONFLOW_DB),env $$(cat $(CURDIR)/var/airflow/postgres.env))

# The demo shows two days in operations: day 1 is the day before AS_OF, day 2 is AS_OF, so
# "today" stays the latest day. Computed once, and only when a recipe needs it.
DAY_ONE = $(eval DAY_ONE := $(shell $(PYTHON) -c 'import datetime, sys; print(datetime.date.fromisoformat(sys.argv[1]) - datetime.timedelta(days=1))' '$(AS_OF)' 2>/dev/null))$(DAY_ONE)
# The daily pipeline, in the order the Assets chain it; then, on day 2, the 07:00 sync watch
# (at day 2's 07:00 Europe/London) and the weekly housekeeping, once.
DAILY_DAGS = cautionflow_sync cautionflow_deadlines cautionflow_letters cautionflow_digests
DEMO_CONFIG = include/config/cautionflow.demo.yaml
# The command line on the demo's register (on PostgreSQL with CAUTIONFLOW_DB, as the DAGs use).
DEMO_CLI = $(if $(CAUTIONFLOW_DB),env $$(cat $(CURDIR)/var/airflow/postgres.env)) $(BIN)
DEMO_FILES = --config $(DEMO_CONFIG) --mail var/demo/mail --letters var/demo/letters

.PHONY: install demo ui test lint unit integration bench clean constraints

install: $(STAMP)

# Reinstalls only when the dependency pins change; every package comes pinned by constraints.txt.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "cautionflow needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: install
	@test -n "$(DAY_ONE)" || { echo "AS_OF must be a date as YYYY-MM-DD, not '$(AS_OF)'"; exit 1; }
	mkdir -p var/demo var/airflow
	$(BIN)/cautionflow demo-data --out var/demo/housing.db --as-of $(DAY_ONE)
	rm -f var/demo/register.db var/demo/register.db-wal var/demo/register.db-shm var/airflow/demo-*.log
	$(if $(CAUTIONFLOW_DB),$(BIN)/python -m cautionflow.demo.postgres --server '$(CAUTIONFLOW_DB)' > var/airflow/postgres.env)
	$(if $(CAUTIONFLOW_DB),@echo "PostgreSQL: Airflow metadata in cautionflow_airflow; the register in cautionflow_register")
	$(AIRFLOW_ENV) $(BIN)/airflow db migrate > var/airflow/migrate.log 2>&1 || (cat var/airflow/migrate.log; exit 1)
	rm -rf var/demo/mail var/demo/reports var/demo/letters var/demo/second-day.log var/demo/before-rerun.json
	@# A local SMTP catcher on 127.0.0.1:1025 (the demo config's smtp) keeps every email as an .eml file.
	@# run DAY LOG-TAG DAG...: each DAG through `airflow dags test`, its output in var/airflow/demo-TAG-DAG.log.
	@# `dags test` runs tasks in its own process and writes no task log files: task_logs files each
	@# task's part of the output where the Airflow UI reads task logs (var/airflow/logs/dag_id=...).
	@$(BIN)/python -m cautionflow.demo.mail_catcher --port 1025 --out var/demo/mail > var/demo/mail-catcher.log 2>&1 & \
	catcher=$$!; trap 'kill $$catcher 2>/dev/null' EXIT; sleep 1; \
	logged() { out=var/airflow/demo-$$1.log; shift; "$$@" > $$out 2>&1; rc=$$?; \
		$(BIN)/python -m cautionflow.demo.task_logs $$out --into var/airflow/logs; \
		[ $$rc = 0 ] || { tail -50 $$out; echo "failed: see $$out"; exit 1; }; }; \
	run() { day=$$1; tag=$$2; shift 2; for dag in "$$@"; do \
		echo "  airflow dags test $$dag $$day"; \
		logged $$tag-$$dag env $(AIRFLOW_ENV) $(BIN)/airflow dags test $$dag $$day; \
	done; }; \
	sync_watch() { echo "  airflow dags test cautionflow_sync_watch $(AS_OF)T07:00 (Europe/London)"; \
		logged $$1-cautionflow_sync_watch env AIRFLOW__CORE__DEFAULT_TIMEZONE=Europe/London $(AIRFLOW_ENV) \
			$(BIN)/airflow dags test cautionflow_sync_watch $(AS_OF)T07:00:00; }; \
	echo "Day 1, $(DAY_ONE): the daily pipeline"; \
	run $(DAY_ONE) $(DAY_ONE) $(DAILY_DAGS); \
	echo "Day 2, $(AS_OF): the housing system changes overnight"; \
	$(BIN)/cautionflow demo-data --second-day --out var/demo/housing.db --as-of $(AS_OF) > var/demo/second-day.log \
		|| exit 1; \
	head -n 1 var/demo/second-day.log | sed 's/^/  /'; \
	run $(AS_OF) $(AS_OF) $(DAILY_DAGS); sync_watch $(AS_OF); run $(AS_OF) $(AS_OF) cautionflow_housekeeping; \
	echo "Day 2 again: a rerun of $(AS_OF) (new Airflow run ids) must send and change nothing"; \
	$(DEMO_CLI)/python -m cautionflow.demo.days snapshot $(DEMO_FILES) --out var/demo/before-rerun.json || exit 1; \
	run $(AS_OF) $(AS_OF)-rerun $(DAILY_DAGS); sync_watch $(AS_OF)-rerun; \
	echo; \
	$(DEMO_CLI)/python -m cautionflow.demo.days rerun-check $(DEMO_FILES) --before var/demo/before-rerun.json --day $(AS_OF)
	@echo
	@$(DEMO_CLI)/python -m cautionflow.demo.days summary --config $(DEMO_CONFIG) --day-one $(DAY_ONE) --day-two $(AS_OF) \
		--script var/demo/second-day.log
	@echo
	@echo "Airflow logs: var/airflow/demo-<day>-<dag>.log (each run's output), task logs, as the Airflow UI shows them, under var/airflow/logs/"
	@echo
	@echo "The register now (day 2):"
	@$(DEMO_CLI)/cautionflow status --config $(DEMO_CONFIG) | sed '$$d'
	@echo
	@echo "Outputs:"
	@ls -d var/demo/housing.db var/demo/register.db 2>/dev/null | sed 's/^/  /'
	$(if $(CAUTIONFLOW_DB),@echo "  the register: the PostgreSQL database cautionflow_register")
	@echo "Reports (var/demo/reports/):"
	@ls var/demo/reports | sed 's/^/  /'
	@echo "Emails as delivered, both days (var/demo/mail/):"
	@ls var/demo/mail | sed 's/^/  /'
	@echo "Resident letters queued for an officer's approval (PDF and HTML in var/demo/letters/), the first 10:"
	@$(DEMO_CLI)/cautionflow letters list --config $(DEMO_CONFIG) > var/demo/letters.tsv
	@# The command's header row and first ten letters, in aligned columns where `column` is installed.
	@sed '$$d' var/demo/letters.tsv | head -n 11 | sed 's/\t\t/\t-\t/g; s/\t\t/\t-\t/g; s/\t$$/\t-/' \
		| { column -t -s "$$(printf '\t')" 2>/dev/null || cat; } | sed 's/^/  /'
	@echo "  ($$(sed -n '$$s/.*"letters": \([0-9]*\).*/\1/p' var/demo/letters.tsv) in all: $(BIN)/cautionflow letters list --config $(DEMO_CONFIG))"
	@rm -f var/demo/letters.tsv
	@echo
	@echo "Look around: $(if $(CAUTIONFLOW_DB),$$(grep ^CAUTIONFLOW_REGISTER_URL= var/airflow/postgres.env) )$(BIN)/cautionflow status --config $(DEMO_CONFIG)"
	@echo "The Airflow UI and the register page: make ui (http://127.0.0.1:$(UI_PORT)/)"

# The Airflow UI on the demo's metadata (after `make demo`), with the "Caution register" page.
# Log in as `operator`; the password is generated into var/airflow/passwords.json on first start.
# The page shows personal data, so it listens on the loopback interface only; UI_HOST=0.0.0.0
# (or another address) exposes it to the network, deliberately.
UI_HOST ?= 127.0.0.1
UI_PORT ?= 8080
UI_URL_HOST = $(if $(filter 0.0.0.0 ::,$(UI_HOST)),127.0.0.1,$(UI_HOST))
ui: install
	@test -f var/airflow/airflow.db -o -n "$(CAUTIONFLOW_DB)" || { echo "run make demo first"; exit 1; }
	@echo "Airflow UI: http://$(UI_URL_HOST):$(UI_PORT)/  (user operator, password in var/airflow/passwords.json)"
	$(if $(filter 127.0.0.1 localhost ::1,$(UI_HOST)),,@echo "Listening on $(UI_HOST): reachable from other machines; the page shows personal data")
	@echo "The register page: the Caution register entry in the navigation, or http://$(UI_URL_HOST):$(UI_PORT)/cautionflow/"
	@echo "Only the api-server runs: the health badges for the scheduler, dag-processor and triggerer are red, as expected."
	$(AIRFLOW_ENV) PATH=$(BIN):$$PATH CAUTIONFLOW_CONFIG=include/config/cautionflow.demo.yaml \
		AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=operator:viewer \
		AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=False \
		AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=$(CURDIR)/var/airflow/passwords.json \
		$(BIN)/airflow api-server --host $(UI_HOST) --port $(UI_PORT)

# ruff, and the layers' import rules: import-linter's contracts in pyproject.toml ([tool.importlinter])
# for the package, ruff's banned-api in dags/ruff.toml and plugins/ruff.toml for the DAG files and plugin.
lint: install
	$(BIN)/ruff check src dags plugins tests bench
	$(BIN)/lint-imports --no-cache

unit: install
	$(BIN)/pytest tests/unit -q

test: install lint
	$(BIN)/pytest -q

bench: install
	$(BIN)/python -m bench.dag_import
	$(BIN)/python -m bench.sync
	$(BIN)/python -m bench.deadlines
	$(BIN)/python -m bench.digests
	$(BIN)/python -m bench.urgent
	$(BIN)/python -m bench.letters
	$(BIN)/python -m bench.lookup

# Regenerate the pins from a working install (after changing pyproject.toml's dependencies).
constraints:
	@# --all keeps setuptools (the wheel test builds with it); pip itself stays the venv's own.
	$(BIN)/python -m pip freeze --all --exclude-editable | grep -v '^pip==' > constraints.txt

clean:
	rm -rf var .pytest_cache .ruff_cache
