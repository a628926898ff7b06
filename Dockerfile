# syntax=docker/dockerfile:1
# The cautionflow Airflow image: Airflow 3.3.2 with this package installed under the same pins the
# Makefile and CI use (constraints.txt), so the containers run exactly what the tests ran.
# DAGs, plugins and include/ (config, SQL, templates) are bind-mounted by docker-compose.yml, so a
# landlord changes configuration and templates without rebuilding.
FROM apache/airflow:3.3.2-python3.11

WORKDIR /opt/cautionflow

# Dependencies first, for the layer cache. README* is optional here (pyproject names README.md).
COPY --chown=airflow:0 pyproject.toml constraints.txt README* ./
COPY --chown=airflow:0 src/ ./src/
# src/cautionflow/resources/ links into include/: the package data (templates, fonts, SQL) the wheel ships.
COPY --chown=airflow:0 include/templates/ ./include/templates/
COPY --chown=airflow:0 include/fonts/ ./include/fonts/
COPY --chown=airflow:0 include/sql/ ./include/sql/
# The celery and s3 extras: CeleryExecutor (compose's celery profile) and s3:// output folders.
RUN pip install --no-cache-dir -c constraints.txt '.[celery,s3]'

COPY --chown=airflow:0 --chmod=0755 docker/airflow/init.sh /opt/cautionflow/docker/init.sh

# Mount points owned by the airflow user, so fresh named volumes inherit that ownership.
RUN mkdir -p /opt/airflow/var /opt/airflow/auth /opt/airflow/include

ENV CAUTIONFLOW_HOME=/opt/airflow
WORKDIR /opt/airflow
