"""Master-data tests: the shared fixtures plus a maintenance person (``mia``)."""

from __future__ import annotations

import pytest

from engine import users
from tests.support import PASSWORD


@pytest.fixture
def maint(runtime):
    """``mia``, who holds the maintenance role; returns her Authorization header maker."""
    users.create_user(runtime, "mia", "Mia Maintenance", ["maintenance"], by="test", password=PASSWORD)
    return "mia"
