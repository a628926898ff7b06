"""cautionflow: a UK social landlord's caution alert register, run by Apache Airflow.

Kept import-light on purpose: DAG files import from this package at parse time.
"""

__version__ = "0.1.0"
