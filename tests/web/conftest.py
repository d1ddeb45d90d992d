"""Fixtures for the web API and CLI tests: a running batch through the API. The app,
its clients and the test people come from ``tests/conftest.py``."""

from __future__ import annotations

import pytest

from tests.web.through_api import import_recipe, start_batch


@pytest.fixture
def batch(client):
    """A running batch of the sampling loop, waiting for its first sample."""
    import_recipe(client)
    return start_batch(client)
