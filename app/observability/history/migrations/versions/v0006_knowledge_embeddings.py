"""Knowledge chunks keep their embedding: semantic ranking of Connic's retrieval_* tools.

`embedding` is the vector packed as float32 (4 bytes a dimension: 6 KiB for a
1536-dimension model, against ~20 KiB as JSON text), `embedding_model` the model that
made it, so a change of model is noticed and the chunk embedded again. Both are null
for chunks stored while the project ranked lexically.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ferry_knowledge") as table:
        table.add_column(sa.Column("embedding", sa.LargeBinary(), nullable=True))
        table.add_column(sa.Column("embedding_model", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ferry_knowledge") as table:
        table.drop_column("embedding_model")
        table.drop_column("embedding")
