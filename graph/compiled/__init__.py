"""The compiled read path: a query whose every field the compiler knows is answered by one SQL
statement that builds the response JSON in the database; anything else runs on the executor.

selection.py collects an operation's fields, compiler.py and lists.py turn them into SQL from the
same declarations the executor uses (permission classes, sort keys, row scopes, filters, cursor
rules), and runner.py plans once per operation shape and runs the statement.
"""
