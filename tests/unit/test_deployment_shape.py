"""Unsafe deployment shapes on distributed executors (issue 17): the rule, without Airflow.

On LocalExecutor everything is one machine's; on any other executor a SQLite register or output
folders nobody said were shared are refused, each with one line saying what to configure."""

from __future__ import annotations

import pytest

from cautionflow.config import CautionflowConfig
from cautionflow.deployment_shape import distributed_executors, executor_names, unsafe_shape_problems

POSTGRES = "postgresql://cautionflow@db:5432/register"
CELERY_PATH = "airflow.providers.celery.executors.celery_executor.CeleryExecutor"
K8S_PATH = "airflow.providers.cncf.kubernetes.executors.kubernetes_executor.KubernetesExecutor"
SQLITE_LINE = ("a SQLite register is for one machine: with CeleryExecutor set register_url "
               "(or the Connection cautionflow_register) to PostgreSQL")


def config(**fields) -> CautionflowConfig:
    """A loaded config (paths as the loader leaves them: relative ones stay relative, resolved on use)."""
    data = {"organisation": "Example Homes", "policy": "dover", "register_url": POSTGRES,
            "source": {"url": "sqlite:////srv/housing.db"}, "output_dir": "/mnt/shared/reports",
            "letters": {"output_dir": "/mnt/shared/letters"}, "home": "/opt/airflow", **fields}
    return CautionflowConfig.model_validate(data)


@pytest.mark.parametrize(
    ("setting", "names"),
    [
        ("LocalExecutor", ("LocalExecutor",)),
        ("CeleryExecutor", ("CeleryExecutor",)),
        (" CeleryExecutor ", ("CeleryExecutor",)),
        (CELERY_PATH, ("CeleryExecutor",)),
        ("airflow.executors.local_executor.LocalExecutor", ("LocalExecutor",)),
        ("LocalExecutor,CeleryExecutor", ("LocalExecutor", "CeleryExecutor")),
        ("LocalExecutor, " + K8S_PATH, ("LocalExecutor", "KubernetesExecutor")),
        ("fast:LocalExecutor", ("LocalExecutor",)),
        # An alias names nothing about where its executor runs: the class counts, not the alias.
        ("LocalExecutor:" + CELERY_PATH, ("CeleryExecutor",)),
        ("remote:my_company.executors.BatchExecutor", ("BatchExecutor",)),
        ("LocalExecutor;team1=CeleryExecutor", ("LocalExecutor", "CeleryExecutor")),
        ("=LocalExecutor;team1=KubernetesExecutor,CeleryExecutor",
         ("LocalExecutor", "KubernetesExecutor", "CeleryExecutor")),
        ("LocalExecutor,", ("LocalExecutor",)),
    ],
)
def test_every_form_of_the_executor_setting_names_its_classes(setting, names):
    assert executor_names(setting) == names


@pytest.mark.parametrize(
    ("setting", "distributed"),
    [
        ("LocalExecutor", ()),
        ("SequentialExecutor", ()),
        ("airflow.executors.local_executor.LocalExecutor", ()),
        ("fast:LocalExecutor", ()),
        ("CeleryExecutor", ("CeleryExecutor",)),
        ("KubernetesExecutor", ("KubernetesExecutor",)),
        (K8S_PATH, ("KubernetesExecutor",)),
        # Every entry counts: the first is only the default, a task may name any other.
        ("LocalExecutor,CeleryExecutor", ("CeleryExecutor",)),
        ("LocalExecutor;team1=KubernetesExecutor", ("KubernetesExecutor",)),
        ("CeleryKubernetesExecutor", ("CeleryKubernetesExecutor",)),
        # An executor this rule does not know may run a task anywhere.
        ("remote:my_company.executors.BatchExecutor", ("BatchExecutor",)),
        ("LocalExecutor:" + CELERY_PATH, ("CeleryExecutor",)),
    ],
)
def test_only_local_and_sequential_run_every_task_on_one_machine(setting, distributed):
    assert distributed_executors(setting) == distributed


@pytest.mark.parametrize("setting", ["LocalExecutor", "SequentialExecutor", "fast:LocalExecutor"])
def test_on_one_machine_nothing_is_refused(setting):
    shape = config(register_url="sqlite:////opt/airflow/var/cautionflow.db", output_dir="var/reports",
                   letters={"output_dir": "var/letters"})
    assert unsafe_shape_problems(setting, shape) == ()


def test_postgresql_and_declared_shared_storage_pass_on_celery():
    assert unsafe_shape_problems("CeleryExecutor", config(shared_storage=True)) == ()
    assert unsafe_shape_problems(CELERY_PATH, config(register_url="postgresql+psycopg://cf@db/r",
                                                     shared_storage=True)) == ()


@pytest.mark.parametrize("url", ["sqlite:////opt/airflow/var/cautionflow.db", "sqlite+pysqlite:///var/r.db",
                                 "SQLite:///var/r.db"])
def test_a_sqlite_register_is_refused_with_what_to_configure(url):
    assert unsafe_shape_problems("CeleryExecutor", config(register_url=url, shared_storage=True)) == (SQLITE_LINE,)


def test_the_line_names_every_distributed_executor_in_the_setting():
    [line] = unsafe_shape_problems("LocalExecutor,CeleryExecutor,KubernetesExecutor",
                                   config(register_url="sqlite:///r.db", shared_storage=True))
    assert "with CeleryExecutor, KubernetesExecutor set register_url" in line


@pytest.mark.parametrize(
    ("reports", "letters"),
    [
        ("var/reports", "var/letters"),  # relative: under each worker's own CAUTIONFLOW_HOME
        ("/opt/airflow/var/reports", "/opt/airflow/var/letters"),  # under the project home
        ("/mnt/efs/reports", "/mnt/efs/letters"),  # looks shared; cannot be told by looking
    ],
)
def test_output_folders_need_the_operators_word_that_they_are_shared(reports, letters):
    shape = config(output_dir=reports, letters={"output_dir": letters})

    assert unsafe_shape_problems("CeleryExecutor", shape) == (
        f"output_dir ({reports}) and letters.output_dir ({letters}) are local folders other workers cannot "
        "see: with CeleryExecutor mount them on storage every worker shares (NFS, EFS, ...) and set "
        "shared_storage: true in the config, or use object store URLs (s3://...)",
    )
    assert unsafe_shape_problems("CeleryExecutor", shape.model_copy(update={"shared_storage": True})) == ()


def test_without_a_letters_section_only_output_dir_is_named():
    [line] = unsafe_shape_problems("KubernetesExecutor", config(letters=None))
    assert line.startswith("output_dir (/mnt/shared/reports) is a local folder other workers cannot see: "
                           "with KubernetesExecutor mount it on storage")
    assert "letters" not in line


def test_both_problems_are_reported_in_order():
    problems = unsafe_shape_problems("CeleryExecutor", config(register_url="sqlite:///var/r.db"))
    assert len(problems) == 2
    assert problems[0] == SQLITE_LINE
    assert problems[1].startswith("output_dir (/mnt/shared/reports) and letters.output_dir")


def test_shared_storage_is_off_unless_the_config_says_so():
    assert config().shared_storage is False
    assert config(shared_storage=True).shared_storage is True


@pytest.mark.parametrize("url", ["s3://cautionflow/reports", "gs://bucket/reports", "abfs://container/r"])
def test_a_folder_on_an_object_store_is_shared_without_saying_so(url):
    shape = config(output_dir=url, letters={"output_dir": url.replace("reports", "letters").replace("/r", "/l")})
    assert unsafe_shape_problems("CeleryExecutor", shape) == ()


def test_only_the_local_folder_is_named_beside_an_object_store():
    [line] = unsafe_shape_problems("CeleryExecutor", config(output_dir="s3://cautionflow/reports"))
    assert line.startswith("letters.output_dir (/mnt/shared/letters) is a local folder other workers cannot see: "
                           "with CeleryExecutor mount it on storage")
    assert line.endswith("or use an object store URL (s3://...)")


def test_a_file_url_is_a_local_folder_by_another_name():
    shape = config(output_dir="file:///mnt/efs/reports", letters={"output_dir": "s3://cautionflow/letters"})
    [line] = unsafe_shape_problems("KubernetesExecutor", shape)
    assert line.startswith("output_dir (file:///mnt/efs/reports) is a local folder")
    assert unsafe_shape_problems("KubernetesExecutor", shape.model_copy(update={"shared_storage": True})) == ()
