"""Alembic migrations of the service database, run by :func:`spinexr.service.store.migrate`."""
