"""Spreadsheet-safe cells: what the error report and the export write, and the import undoes."""

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_QUOTED_STARTS = tuple("'" + start for start in FORMULA_STARTS)


def neutralise(cell: str) -> str:
    """Keep spreadsheets from running a cell as a formula: prefix a quote to risky starts."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def restore(cell: str) -> str:
    """Undo `neutralise`: a quote before a risky start is dropped, so a file TaskQL wrote (an
    export, an error report) imports as the text it came from."""
    return cell[1:] if cell.startswith(_QUOTED_STARTS) else cell
