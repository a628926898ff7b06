"""Thin glue to Apache Airflow; the logic stays in services and domain."""
