"""Passwords, tokens and access policy. No GraphQL here."""
