"""Storage: SQLAlchemy tables (`models`), engines and sessions for SQLite and PostgreSQL (`db`), the schema
upgrade and its Alembic migrations (`schema`, `migrations/`). Imports nothing of GridFlow but `errors`; every
other package stores through it.
"""
