"""The GraphQL layer: context, permissions, errors, loaders and one module per domain."""
