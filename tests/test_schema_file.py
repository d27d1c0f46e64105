"""The committed schema.graphql is exactly what the code exports."""

import argparse
from pathlib import Path

from taskql.cli import cmd_export_schema

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.graphql"


def test_committed_schema_matches_the_code(tmp_path: Path) -> None:
    exported = tmp_path / "schema.graphql"
    assert cmd_export_schema(argparse.Namespace(output=str(exported))) == 0
    assert SCHEMA_FILE.read_text(encoding="utf-8") == exported.read_text(encoding="utf-8"), (
        "schema.graphql is out of date: run `make schema` (taskql export-schema -o schema.graphql)"
        " and commit it with the change"
    )
