"""Test support for DAGs that use this provider: a pytest plugin with a local PatSnap sandbox.

Opt in with ``-p airflow_provider_patsnap.testing.pytest_plugin`` (or ``pytest_plugins = [...]`` in a
conftest). See docs/sandbox.md.
"""
