"""A seeded generator of read operations over TaskQL's schema, for the differential test.

It walks the schema's own types (any field, any argument), so new fields are covered without
changing it; values are drawn from the data the test built (ids, cursors, words of titles) with
some that are wrong on purpose (unknown ids, bad cursors, `first` out of range). Operations use
aliases, named and inline fragments, variables and @include/@skip.
"""

import json
import random
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLType,
    Undefined,
)

SKIPPED_ROOTS = frozenset({"importJob", "importJobs"})  # no import jobs in the test's data


@dataclass
class Pools:
    """Values worth sending: ids that exist (and one that does not), cursors, search words."""

    ids: dict[str, list[int]]
    cursors: dict[str, list[str]]  # by list field: tasks, projects, users, members
    words: list[str]


@dataclass
class Operation:
    """One generated document and its variables."""

    document: str
    variables: dict[str, Any]


@dataclass
class _Writer:
    rng: random.Random
    pools: Pools
    max_depth: int = 6
    variables: dict[str, Any] = field(default_factory=dict)
    definitions: list[str] = field(default_factory=list)
    fragments: list[str] = field(default_factory=list)
    aliases: int = 0

    def variable(self, type_text: str, value: Any) -> str:
        name = f"v{len(self.variables)}"
        self.variables[name] = value
        self.definitions.append(f"${name}: {type_text}")
        return f"${name}"


def _named(graphql_type: GraphQLType) -> GraphQLNamedType:
    while isinstance(graphql_type, GraphQLNonNull | GraphQLList):
        graphql_type = graphql_type.of_type
    assert isinstance(graphql_type, GraphQLNamedType)
    return graphql_type


def _literal(value: Any) -> str:
    """A GraphQL literal: enums are `Enum("NAME")`-marked strings."""
    if isinstance(value, _Enum):
        return value.name
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


@dataclass(frozen=True)
class _Enum:
    name: str


def _plain(value: Any) -> Any:
    """The JSON of a value for the variables."""
    if isinstance(value, _Enum):
        return value.name
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _value(w: _Writer, name: str, graphql_type: GraphQLType, owner: str = "") -> Any:
    named = _named(graphql_type)
    rng, pools = w.rng, w.pools
    if isinstance(graphql_type, GraphQLNonNull):
        graphql_type = graphql_type.of_type
    if isinstance(graphql_type, GraphQLList):
        return [_value(w, name, graphql_type.of_type) for _ in range(rng.randint(0, 3))]
    if isinstance(named, GraphQLEnumType):
        return _Enum(rng.choice(list(named.values)))
    if isinstance(named, GraphQLInputObjectType):
        fields = list(named.fields.items())
        chosen = rng.sample(fields, rng.randint(0, min(3, len(fields))))
        value = {}
        for key, input_field in chosen:
            if (
                key == "direction"
                or isinstance(input_field.type, GraphQLNonNull)
                or rng.random() < 0.9
            ):
                value[key] = _value(w, key, input_field.type)
        for key, input_field in fields:  # required input fields
            if isinstance(input_field.type, GraphQLNonNull) and key not in value:
                value[key] = _value(w, key, input_field.type)
        return value
    assert isinstance(named, GraphQLScalarType)
    if named.name == "Boolean":
        return rng.random() < 0.5
    if named.name == "Int":
        if name == "first":
            return rng.choice([0, 1, 2, 2, 3, 3, 3, 5, 5, 5, 20, 20, 101])
        kind = "users" if "assignee" in name or "member" in name or "user" in name else "any"
        pool = pools.ids.get(kind) or pools.ids["any"]
        return rng.choice([*pool, *pool, *pool, 99999])
    if name == "after":
        mine = pools.cursors.get(owner) or [c for cs in pools.cursors.values() for c in cs]
        return rng.choice([*mine, *mine, *mine, "bogus", "4142"])
    if name == "search":
        return rng.choice([*pools.words, "", "%", "_", "zzz"])
    return rng.choice(pools.words)


def _arguments(w: _Writer, field_name: str, field_def: Any) -> str:
    parts = []
    for arg_name, arg in field_def.args.items():
        required = isinstance(arg.type, GraphQLNonNull) and arg.default_value is Undefined
        if not required and w.rng.random() < 0.5:
            continue
        if arg_name == "after" and w.rng.random() < 0.4:
            continue
        value = _value(w, arg_name, arg.type, field_name)
        if w.rng.random() < 0.35:
            type_text = str(arg.type)
            parts.append(f"{arg_name}: {w.variable(type_text, _plain(value))}")
        else:
            parts.append(f"{arg_name}: {_literal(value)}")
    return f"({', '.join(parts)})" if parts else ""


def _directive(w: _Writer) -> str:
    roll = w.rng.random()
    if roll < 0.06:
        return f" @include(if: {w.variable('Boolean!', w.rng.random() < 0.5)})"
    if roll < 0.1:
        return f" @skip(if: {'true' if w.rng.random() < 0.5 else 'false'})"
    return ""


def _selection(w: _Writer, object_type: GraphQLObjectType, depth: int) -> str:
    fields = [
        (n, f) for n, f in object_type.fields.items() if not (depth == 0 and n in SKIPPED_ROOTS)
    ]
    count = w.rng.randint(1, min(4, len(fields)))
    parts: list[str] = []
    for name, field_def in w.rng.sample(fields, count):
        target = _named(field_def.type)
        if isinstance(target, GraphQLObjectType) and depth >= w.max_depth:
            continue
        alias = ""
        if w.aliases < 10 and w.rng.random() < 0.15:
            w.aliases += 1
            alias = f"a{w.aliases}: "
        text = f"{alias}{name}{_arguments(w, name, field_def)}{_directive(w)}"
        if isinstance(target, GraphQLObjectType):
            text += " { " + _selection(w, target, depth + 1) + " }"
        parts.append(text)
    if w.rng.random() < 0.1:
        parts.append("__typename")
    if not parts:
        parts.append("__typename")
    roll = w.rng.random()
    if roll < 0.1:
        return f"... on {object_type.name} {{ {' '.join(parts)} }}"
    if roll < 0.2 and depth > 0:
        name = f"F{len(w.fragments)}"
        w.fragments.append(f"fragment {name} on {object_type.name} {{ {' '.join(parts)} }}")
        return f"...{name}"
    return " ".join(parts)


def generate(schema: GraphQLSchema, pools: Pools, *, seed: int, count: int) -> list[Operation]:
    """`count` read operations, the same ones for the same seed."""
    rng = random.Random(seed)
    query_type = schema.query_type
    assert query_type is not None
    operations = []
    for number in range(count):
        w = _Writer(rng, pools)
        body = _selection(w, query_type, 0)
        signature = f"({', '.join(w.definitions)})" if w.definitions else ""
        document = f"query Q{number}{signature} {{ {body} }}"
        document = " ".join([document, *w.fragments])
        operations.append(Operation(document, w.variables))
    return operations
