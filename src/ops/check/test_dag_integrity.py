"""liftoff's DAG integrity check, run when the project has no
.astro/test_dag_integrity_default.py: every Python file under dags/ must import as a DAG file,
with connections, variables and environment variables mocked, so that parsing needs no secrets
and no database. Files listed in .astro/dag_integrity_exceptions.txt are skipped.

Written into a throw-away place by liftoff (never into the project) and run with pytest inside
the image, from the image's working directory holding the project's folders.
"""

import os
from pathlib import Path

import pytest

DAGS = Path("dags")
EXCEPTIONS = Path(".astro/dag_integrity_exceptions.txt")
NO_FILES = "<no DAG files>"


def exempt():
    if not EXCEPTIONS.is_file():
        return set()
    lines = EXCEPTIONS.read_text().splitlines()
    return {l.strip() for l in lines if l.strip() and not l.lstrip().startswith("#")}


def dag_files():
    if not DAGS.is_dir():
        return []
    return sorted(
        str(p) for p in DAGS.rglob("*.py") if "__pycache__" not in p.parts and p.is_file()
    )


def mocked(key):
    return "MOCKED_" + str(key).upper() + "_VALUE"


def mock_secrets(monkeypatch):
    from airflow.hooks.base import BaseHook
    from airflow.models import Connection, Variable

    def get_connection(cls, conn_id, *args, **kwargs):
        return Connection(conn_id=conn_id, conn_type="generic")

    def variable_get(key, *args, **kwargs):
        return mocked(key)

    monkeypatch.setattr(BaseHook, "get_connection", classmethod(get_connection))
    monkeypatch.setattr(Variable, "get", staticmethod(variable_get))
    try:
        from airflow.sdk import Variable as SdkVariable

        monkeypatch.setattr(SdkVariable, "get", staticmethod(variable_get))
    except ImportError:
        pass
    real_getenv = os.getenv

    def getenv(key, default=None):
        value = real_getenv(key)
        return value if value is not None else mocked(key)

    monkeypatch.setattr(os, "getenv", getenv)


@pytest.mark.parametrize("path", dag_files() or [NO_FILES])
def test_dag_file_imports(path, monkeypatch):
    if path == NO_FILES:
        pytest.skip("no DAG files")
    if path in exempt():
        pytest.skip("listed in .astro/dag_integrity_exceptions.txt")
    mock_secrets(monkeypatch)
    from airflow.models import DagBag

    bag = DagBag(dag_folder=path, include_examples=False)
    if bag.import_errors:
        last = [str(e).strip().splitlines()[-1] for e in bag.import_errors.values()]
        pytest.fail("; ".join(last), pytrace=False)
