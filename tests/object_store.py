"""An S3-compatible object store for tests: moto's server mode (from PyPI) in its own process on a
loopback port, reached by Airflow's `ObjectStoragePath` through an Airflow connection given in the
environment (`AIRFLOW_CONN_<ID>`), as a deployment would give its real S3 credentials.

    with moto_s3("cautionflow") as store:
        env = {**os.environ, **store.environment("cautionflow_storage")}
        ...  # config: output_dir: s3://cautionflow/reports, storage_conn_id: cautionflow_storage
        assert store.keys("reports/")

The store forgets everything when its process stops; each `moto_s3` is a fresh one.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

# Synthetic credentials: moto accepts any; botocore needs some to sign requests.
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "eu-west-2"


@dataclass(frozen=True)
class MotoS3:
    endpoint_url: str
    bucket: str

    def connection(self) -> dict[str, object]:
        """The Airflow connection (JSON form) that points the Amazon provider's S3 filesystem here."""
        return {
            "conn_type": "aws", "login": ACCESS_KEY, "password": SECRET_KEY,
            "extra": {"endpoint_url": self.endpoint_url, "region_name": REGION},
        }

    def environment(self, conn_id: str) -> dict[str, str]:
        """Environment variables for a process (an Airflow component, the command line) that reads
        the store through the Airflow connection `conn_id`."""
        return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(self.connection())}

    def client(self):  # a boto3 S3 client, for the test's own checks
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name=REGION)

    def keys(self, prefix: str = "") -> list[str]:
        """Every key in the bucket under `prefix`, sorted."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))

    def read(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def moto_s3(bucket: str = "cautionflow") -> Iterator[MotoS3]:
    """A fresh moto S3 server with `bucket` created; stopped on leaving."""
    port = _free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = MotoS3(f"http://127.0.0.1:{port}", bucket)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{store.endpoint_url}/moto-api/", timeout=2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto's S3 server did not start on port {port}") from None
                time.sleep(0.2)
        store.client().create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield store
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
