"""Every file cautionflow writes or reads, through Airflow's ObjectStoragePath.

An output folder setting (`output_dir`, `letters.output_dir`, a subject access export's `--output`)
is a local path or a URL (`s3://bucket/prefix`, `gs://...`, `file:///abs/path`): a URL is used as
given, through the Airflow connection `storage_conn_id` (None: the scheme's default connection,
such as aws_default); a local path becomes `file://` its absolute path under the project home, so a
folder can move to a bucket with no other change. Services are given these path objects and use only
pathlib's methods on them (a `pathlib.Path` works as well, as the unit tests give them).

Here, not in `cautionflow.config`: the services import the config, and must not reach Airflow.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from cautionflow.config import ConfigError, storage_scheme

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from cautionflow.config import CautionflowConfig


def _object_storage_path() -> type[ObjectStoragePath]:
    """Airflow's ObjectStoragePath class, imported on first use: airflow.sdk takes seconds to import,
    and most commands write no file. Importing Airflow outside an Airflow process (the command line)
    configures logging for Airflow's own processes: a handler on the root logger printing every
    INFO line to stdout, where the command line keeps only its output (the JSON summary). That
    handler, the root's level and any logger it disabled are put back as they were; in an Airflow
    process Airflow is already imported, and its logging stays as Airflow set it."""
    if "airflow" in sys.modules:
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    enabled = [x for x in logging.Logger.manager.loggerDict.values()
               if isinstance(x, logging.Logger) and not x.disabled]
    from airflow.sdk import ObjectStoragePath

    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)
    for logger in enabled:
        logger.disabled = False
    # Airflow's own loggers (the Amazon provider's "credentials retrieved", say) write through
    # structlog to stdout unless told a stream: stderr, with the command line's progress.
    import structlog

    factory = structlog.get_config().get("logger_factory")
    if hasattr(factory, "io") and factory.io is None:
        factory.io = sys.stderr
    return ObjectStoragePath


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def storage_path(config: CautionflowConfig, value: str) -> ObjectStoragePath:
    """`value` (a folder or file setting) as an ObjectStoragePath, its store connected.

    The store's filesystem is made here, once per process (Airflow caches it by scheme and
    connection): Amazon's provider makes its S3 filesystem with `asyncio.run`, which cannot run
    inside the mail steps' event loop, so there it is made in a thread of its own. Made inside the
    loop, the path would silently fall back to a filesystem without the connection's credentials."""
    if _in_event_loop():
        with ThreadPoolExecutor(max_workers=1) as thread:
            return thread.submit(_connected_path, config, value).result()
    return _connected_path(config, value)


def _connected_path(config: CautionflowConfig, value: str) -> ObjectStoragePath:
    ObjectStoragePath = _object_storage_path()  # noqa: N806 - the class, by its own name

    scheme = storage_scheme(value)
    if scheme is None:
        # abspath, not resolve: `..` is tidied but a symlinked folder (a mount) stays as configured.
        return ObjectStoragePath(f"file://{os.path.abspath(config.path(value))}")
    if scheme == "file":  # the local disk: an Airflow connection (an S3 one, say) would not apply
        return ObjectStoragePath(value.strip())
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        if config.storage_conn_id is not None:
            # Asked for first: Amazon's provider, given a connection id it cannot find, warns and goes
            # on with boto3's default credentials, writing residents' letters wherever those lead.
            from airflow.sdk import Connection

            Connection.get(config.storage_conn_id)
        path = ObjectStoragePath(value.strip(), conn_id=config.storage_conn_id)
        path.fs  # noqa: B018 - connects the store now (see storage_path), and a wrong connection fails here
    except AirflowNotFoundException:
        raise ConfigError(
            f"storage_conn_id: the Airflow connection {config.storage_conn_id!r} for {value.strip()} is not "
            "defined (add it in Airflow, or as AIRFLOW_CONN_<ID> in the environment)"
        ) from None
    return path


def reports_storage(config: CautionflowConfig) -> ObjectStoragePath:
    """Where reports (and subject access exports, by default) are written: `output_dir`."""
    return storage_path(config, config.output_dir)


def letters_storage(config: CautionflowConfig) -> ObjectStoragePath:
    """Where the letters' PDFs are: `letters.output_dir` (its default without a letters section)."""
    return storage_path(config, config.letters_output_dir())
