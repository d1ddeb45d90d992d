"""The upgrade tests restore into fresh databases as the backup tests do."""

from tests.backup.conftest import fresh  # noqa: F401  (the fixture)
