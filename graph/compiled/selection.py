"""An operation's selection as a tree of response keys: fragments spread, @include/@skip
applied, same-key fields merged, in the order the executor would answer them."""

from collections.abc import Iterable
from dataclasses import dataclass, field

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLIncludeDirective,
    GraphQLSkipDirective,
    InlineFragmentNode,
    SelectionSetNode,
)
from graphql.execution.values import VariableValues, get_directive_values

from graph.compiled.errors import Unsupported

KNOWN_DIRECTIVES = frozenset({"include", "skip"})


@dataclass(slots=True)
class Selected:
    """One response key: the field it answers and the nodes that ask for it."""

    key: str
    name: str
    nodes: list[FieldNode] = field(default_factory=list)

    @property
    def node(self) -> FieldNode:
        return self.nodes[0]


@dataclass(frozen=True, slots=True)
class Collector:
    """Collects selections against the fragments and variables of one request."""

    fragments: dict[str, FragmentDefinitionNode]
    variables: VariableValues

    def fields(self, type_name: str, sets: Iterable[SelectionSetNode | None]) -> list[Selected]:
        """The response keys selected on an object of `type_name` by these selection sets."""
        found: dict[str, Selected] = {}
        for selection_set in sets:
            if selection_set is not None:
                self._collect(type_name, selection_set, found, set())
        return list(found.values())

    def children(self, type_name: str, selected: Selected) -> list[Selected]:
        """The response keys under a field, merged over all of its nodes."""
        return self.fields(type_name, (node.selection_set for node in selected.nodes))

    def _included(self, node: FieldNode | InlineFragmentNode | FragmentSpreadNode) -> bool:
        for directive in node.directives or ():
            if directive.name.value not in KNOWN_DIRECTIVES:
                raise Unsupported(f"the @{directive.name.value} directive")
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        if skip is not None and skip["if"] is True:
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return include is None or include["if"] is not False

    def _collect(
        self,
        type_name: str,
        selection_set: SelectionSetNode,
        found: dict[str, Selected],
        visited: set[str],
    ) -> None:
        for selection in selection_set.selections:
            if not self._included(selection):  # type: ignore[arg-type]
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                entry = found.setdefault(key, Selected(key, selection.name.value))
                entry.nodes.append(selection)
            elif isinstance(selection, InlineFragmentNode):
                self._check_condition(type_name, selection.type_condition)
                self._collect(type_name, selection.selection_set, found, visited)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in visited:
                    continue
                visited.add(name)
                fragment = self.fragments[name]
                if fragment.variable_definitions:
                    raise Unsupported("fragment variables")
                self._check_condition(type_name, fragment.type_condition)
                self._collect(type_name, fragment.selection_set, found, visited)

    @staticmethod
    def _check_condition(type_name: str, condition: object) -> None:
        # Every type the compiler answers is an object type: a valid condition names it.
        name = getattr(getattr(condition, "name", None), "value", type_name)
        if name != type_name:
            raise Unsupported(f"a fragment on {name} inside {type_name}")
