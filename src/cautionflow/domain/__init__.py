"""Pure, typed domain logic: no I/O, no Airflow, no database."""
