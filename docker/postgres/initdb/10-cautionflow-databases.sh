#!/usr/bin/env bash
# Runs once, when the postgres data volume is empty (docker-entrypoint-initdb.d).
# One server, two databases with their own owners: Airflow's metadata and the caution register, so
# Airflow's credentials cannot read the register and a register restore never touches Airflow.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v airflow_password="${AIRFLOW_DB_PASSWORD:?AIRFLOW_DB_PASSWORD is not set}" \
    -v register_password="${REGISTER_DB_PASSWORD:?REGISTER_DB_PASSWORD is not set}" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow ENCODING 'UTF8';
REVOKE ALL ON DATABASE airflow FROM PUBLIC;

CREATE ROLE cautionflow LOGIN PASSWORD :'register_password';
CREATE DATABASE cautionflow_register OWNER cautionflow ENCODING 'UTF8';
REVOKE ALL ON DATABASE cautionflow_register FROM PUBLIC;
SQL
