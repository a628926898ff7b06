#!/usr/bin/env bash
# The stack's one-off start-up job (service airflow-init): migrate Airflow's metadata database and
# set the admin's password, then exit 0 so the long-running services may start.
set -euo pipefail

export AIRFLOW_ADMIN_USERNAME="${AIRFLOW_ADMIN_USERNAME:-admin}"
export AIRFLOW_ADMIN_PASSWORD="${AIRFLOW_ADMIN_PASSWORD:?AIRFLOW_ADMIN_PASSWORD is not set}"

airflow db migrate

# Airflow 3's simple auth manager reads users from [core] simple_auth_manager_users and their
# passwords from this JSON file; writing it here makes the password the one in .env, not a random
# one printed to the api-server's log. Rewritten on every start so a changed password takes effect.
passwords_file="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-${AIRFLOW_HOME:-/opt/airflow}/simple_auth_manager_passwords.json.generated}"
mkdir -p "$(dirname "$passwords_file")"
python - "$passwords_file" <<'PY'
import json
import os
import sys

path = sys.argv[1]
try:
    with open(path) as fh:
        passwords = json.load(fh)
except (FileNotFoundError, json.JSONDecodeError):
    passwords = {}
passwords[os.environ["AIRFLOW_ADMIN_USERNAME"]] = os.environ["AIRFLOW_ADMIN_PASSWORD"]
tmp = path + ".tmp"
with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
    json.dump(passwords, fh)
os.replace(tmp, path)
PY
echo "airflow-init: admin user '${AIRFLOW_ADMIN_USERNAME}' is ready"
if [[ "$AIRFLOW_ADMIN_PASSWORD" == "admin" ]]; then
    echo "airflow-init: WARNING: the admin password is the default; set AIRFLOW_ADMIN_PASSWORD in .env" >&2
fi

mkdir -p "${CAUTIONFLOW_HOME:-/opt/airflow}/var"
config="${AIRFLOW_VAR_CAUTIONFLOW_CONFIG:-}"
if [[ -n "$config" && ! -f "$config" ]]; then
    echo "airflow-init: WARNING: $config does not exist; the cautionflow DAGs need it (see include/config/)" >&2
fi
