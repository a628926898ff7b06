"""cautionflow inside Apache Airflow: its settings (`settings`: the config from the Variable, secrets
from Connections), the task runners the DAG files call (`tasks`), and the api-server's read of the
DAG runs for the register page (`metadata`). Every task runner calls the step table
(`cautionflow.steps`); nothing here holds pipeline logic."""
