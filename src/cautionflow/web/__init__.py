"""Web pages served inside Airflow's api-server by the plugins in `plugins/`."""
