"""``python -m web.cli``: the ``batchline`` command."""

from . import main

main()
