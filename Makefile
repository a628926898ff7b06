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

# The daily pipeline, in the order the Assets chain it.
DEMO_DAGS = cautionflow_sync cautionflow_deadlines cautionflow_letters cautionflow_digests cautionflow_housekeeping

.PHONY: install demo ui test lint unit integration bench clean constraints

install: $(STAMP)

# Reinstalls only when the dependency pins change; every package comes pinned by constraints.txt.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "cautionflow needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: install
	mkdir -p var/demo var/airflow
	$(BIN)/cautionflow demo-data --out var/demo/housing.db --as-of $(AS_OF)
	rm -f var/demo/register.db var/demo/register.db-wal var/demo/register.db-shm
	$(if $(CAUTIONFLOW_DB),$(BIN)/python -m cautionflow.demo.postgres --server '$(CAUTIONFLOW_DB)' > var/airflow/postgres.env)
	$(if $(CAUTIONFLOW_DB),@echo "PostgreSQL: Airflow metadata in cautionflow_airflow; the register in cautionflow_register")
	$(AIRFLOW_ENV) $(BIN)/airflow db migrate > var/airflow/migrate.log 2>&1 || (cat var/airflow/migrate.log; exit 1)
	rm -rf var/demo/mail var/demo/reports var/demo/letters
	@# A local SMTP catcher on 127.0.0.1:1025 (the demo config's smtp) keeps the digests as .eml files.
	@$(BIN)/python -m cautionflow.demo.mail_catcher --port 1025 --out var/demo/mail > var/demo/mail-catcher.log 2>&1 & \
	catcher=$$!; trap 'kill $$catcher 2>/dev/null' EXIT; sleep 1; \
	for dag in $(DEMO_DAGS); do \
		echo "airflow dags test $$dag $(AS_OF)"; \
		$(AIRFLOW_ENV) $(BIN)/airflow dags test $$dag $(AS_OF) > var/airflow/demo-$$dag.log 2>&1 \
			|| { tail -50 var/airflow/demo-$$dag.log; exit 1; }; \
	done
	@echo
	@echo "Airflow ran $(DEMO_DAGS) as of $(AS_OF): success (logs: var/airflow/demo-<dag>.log)"
	@$(if $(CAUTIONFLOW_DB),env $$(cat $(CURDIR)/var/airflow/postgres.env)) $(BIN)/cautionflow status --config include/config/cautionflow.demo.yaml | sed '$$d'
	@echo
	@echo "Outputs: housing database var/demo/housing.db, register $(if $(CAUTIONFLOW_DB),the PostgreSQL database cautionflow_register,var/demo/register.db)"
	@echo "Reports: var/demo/reports/ (All Alerts, overdue reviews; equality, survey exclusions, non-notification, stale alerts)"
	@ls var/demo/reports | sed 's/^/  /'
	@echo "Emails as delivered (digests, the officers' reminder): var/demo/mail/"
	@ls var/demo/mail | sed 's/^/  /'
	@echo "Resident letters queued for an officer's approval (PDF and HTML): var/demo/letters/"
	@$(if $(CAUTIONFLOW_DB),env $$(cat $(CURDIR)/var/airflow/postgres.env)) $(BIN)/cautionflow letters list --config include/config/cautionflow.demo.yaml | sed "\$$d" | tail -n 10
	@echo "Look around: $(if $(CAUTIONFLOW_DB),$$(grep ^CAUTIONFLOW_REGISTER_URL= var/airflow/postgres.env) )$(BIN)/cautionflow status --config include/config/cautionflow.demo.yaml"

# The Airflow UI on the demo's metadata (after `make demo`), with the "Caution register" page.
# Log in as `operator`; the password is generated into var/airflow/passwords.json on first start.
UI_PORT ?= 8080
ui: install
	@test -f var/airflow/airflow.db -o -n "$(CAUTIONFLOW_DB)" || { echo "run make demo first"; exit 1; }
	@echo "Airflow UI: http://127.0.0.1:$(UI_PORT)/  (user operator, password in var/airflow/passwords.json)"
	@echo "The register page: the Caution register entry in the navigation, or http://127.0.0.1:$(UI_PORT)/cautionflow/"
	$(AIRFLOW_ENV) PATH=$(BIN):$$PATH CAUTIONFLOW_CONFIG=include/config/cautionflow.demo.yaml \
		AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=operator:viewer \
		AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=False \
		AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=$(CURDIR)/var/airflow/passwords.json \
		$(BIN)/airflow api-server --port $(UI_PORT)

lint: install
	$(BIN)/ruff check src dags plugins tests bench

unit: install
	$(BIN)/pytest tests/unit -q

test: install lint
	$(BIN)/pytest -q

bench: install
	$(BIN)/python -m bench.dag_import
	$(BIN)/python -m bench.sync
	$(BIN)/python -m bench.deadlines
	$(BIN)/python -m bench.digests
	$(BIN)/python -m bench.letters

# Regenerate the pins from a working install (after changing pyproject.toml's dependencies).
constraints:
	$(BIN)/python -m pip freeze --exclude-editable > constraints.txt

clean:
	rm -rf var .pytest_cache .ruff_cache
