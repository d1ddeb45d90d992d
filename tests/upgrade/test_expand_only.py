"""Every migration after the previous release's head is expand-only, or declares that
it contracts an expansion a release already shipped (docs/operations.md, "Upgrades")."""

from __future__ import annotations

import tomllib
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from engine import migrate

from .contract_check import contract_operations, declared, problems, released_versions

ROOT = Path(__file__).resolve().parents[2]
PREVIOUS = tomllib.loads((ROOT / "engine" / "migrations" / "previous_release.toml").read_text())
RELEASED = released_versions(ROOT / "CHANGELOG.md")


def _after_previous_release() -> list:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrate.HERE / "migrations"))
    scripts = ScriptDirectory.from_config(cfg)
    return list(scripts.iterate_revisions("heads", PREVIOUS["head_revision"]))[:-1]  # without that head itself


def test_the_previous_release_is_a_released_version():
    assert PREVIOUS["version"] in RELEASED
    assert len(PREVIOUS["commit"]) == 40


def test_migrations_after_the_previous_release_are_expand_only():
    revisions = _after_previous_release()
    assert len(revisions) >= 15  # 0002 .. 0015_*: the walk found them all
    found = {rev.revision: problems(Path(rev.path).read_text(), RELEASED) for rev in revisions}
    assert not {r: p for r, p in found.items() if p}, "contract operations without a declaration"


def test_the_check_finds_contract_operations():
    """The check itself: it must see each kind of contract, in upgrade() and its helpers,
    and leave downgrade() and expansions alone."""
    src = """
def _cols(b):
    b.drop_column("old")
def upgrade():
    op.add_column("t", sa.Column("a", sa.Integer(), nullable=True))
    op.add_column("t", sa.Column("b", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix", "t", ["a"])
    op.alter_column("t", "c", nullable=True)
    op.alter_column("t", "d", nullable=False, server_default="x")
    op.drop_table("gone")
    op.rename_table("a", "b")
    op.alter_column("t", "e", type_=sa.Text())
    op.alter_column("t", "f", new_column_name="g")
    op.alter_column("t", "h", nullable=False)
    op.drop_constraint("uq", "t")
    op.execute("ALTER TABLE t DROP COLUMN x")
    op.execute("ALTER TABLE t ALTER COLUMN y SET NOT NULL")
    with op.batch_alter_table("t") as b:
        _cols(b)
def downgrade():
    op.drop_table("t")
"""
    ops = contract_operations(src)
    assert len(ops) == 9, ops  # the six calls, the two statements, the helper's drop_column
    assert any("drop_column" in o for o in ops)
    assert sum("drop_table" in o for o in ops) == 1  # downgrade() is not looked at
    assert problems(src, RELEASED)
    declared_src = 'contract = True\nexpanded_in = "0.1.0"\n' + src
    assert declared(declared_src) == (True, "0.1.0")
    assert problems(declared_src, RELEASED) == []
    unreleased = 'contract = True\nexpanded_in = "9.9.9"\n' + src
    assert "not a released version" in problems(unreleased, RELEASED)[0]
    assert problems("def upgrade():\n    op.add_column('t', sa.Column('a', sa.Text()))\n", RELEASED) == []
