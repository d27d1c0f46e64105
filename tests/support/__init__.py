"""Shared test helpers, imported by test modules and by conftest.py (which holds only fixtures).

- `accounts`: the test secret, password and bcrypt cost; the user-factory and token types.
- `database`: which databases the suite runs on, scratch databases, emptying tables.
- `graphql`: posting GraphQL documents and reading the answer.
- `world`: the small worlds of people, projects and tasks that tests run in.
- `imports`: CSV upload, queue and report helpers for the import tests.
- `statements`: counting the SQL statements an engine sends.
- `processes`: the environment for, and the starting and stopping of, real `taskql` processes.
- `browser`: the vendored GraphiQL assets and Debian's Chromium, or a skip (a failure in CI).
"""
