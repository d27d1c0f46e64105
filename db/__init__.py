"""Persistence: engine, session factory, table models and data functions. No GraphQL here."""
