"""Glue to the platforms cautionflow runs in (Apache Airflow); the logic stays in steps, services and domain."""
