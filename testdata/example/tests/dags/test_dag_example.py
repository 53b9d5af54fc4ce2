"""Checks that every DAG imports without errors."""

from airflow.models import DagBag


def test_no_import_errors():
    assert DagBag(include_examples=False).import_errors == {}
