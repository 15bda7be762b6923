"""Durable storage: SQLAlchemy tables, migrations, repositories and the group-commit writer."""
