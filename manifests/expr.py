"""Parse a small filter language into a pyarrow Expression, with Python's `ast` and a whitelist.

`score_aesthetic > 5 and edit_type == "removal"`, `signal in ["blur", "motion"]`, `uri is None`,
`not passed`, `3 <= fps < 30`. Only comparisons, and/or/not, in-lists, literals, column names and
`is None`/`is null` are accepted; nothing is ever evaluated as Python.
"""

from __future__ import annotations

import ast
import math
from typing import TypeGuard

import pyarrow as pa
import pyarrow.compute as pc

from manifests.errors import ManifestError

MAX_FILTER_CHARS = 4096
MAX_DEPTH = 50
"""Hostile filters (megabyte strings, thousand-deep nesting) are refused before they cost anything."""
_INT64 = (-(2**63), 2**63 - 1)
_ALLOWED = "comparisons (== != < <= > >=), and/or/not, in [...], is None, literals and column names"
_NULL_NAMES = {"null", "None"}
_COMPARE = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
}
_FLIPPED = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE, ast.Eq: ast.Eq, ast.NotEq: ast.NotEq}


def parse_filter(text: str, schema: pa.Schema) -> pc.Expression:
    """The Expression for `text` over `schema`; ManifestError (one line) for anything not whitelisted."""
    if len(text) > MAX_FILTER_CHARS:
        raise ManifestError(f"filter: expression of {len(text)} characters is longer than {MAX_FILTER_CHARS}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ManifestError(f"filter: syntax error at column {exc.offset}: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise ManifestError(f"filter: expression too large or too deeply nested ({type(exc).__name__})") from None
    if _depth(tree.body) > MAX_DEPTH:
        raise ManifestError(f"filter: expression nested deeper than {MAX_DEPTH} levels")
    return _Parser(schema).boolean(tree.body)


def _depth(node: ast.AST) -> int:
    """Nesting depth of an AST, without recursion (a hostile tree must not blow Python's stack)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(current))
    return deepest


class _Parser:
    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema

    def boolean(self, node: ast.expr) -> pc.Expression:
        if isinstance(node, ast.BoolOp):
            exprs = [self.boolean(v) for v in node.values]
            out = exprs[0]
            for e in exprs[1:]:
                out = (out & e) if isinstance(node.op, ast.And) else (out | e)
            return out
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return ~self.boolean(node.operand)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Name) and node.id in self.schema.names:
            if not pa.types.is_boolean(self.schema.field(node.id).type):
                raise ManifestError(f"filter: column {node.id!r} is not boolean; compare it with something")
            return pc.field(node.id)
        return self.reject(node)

    def compare(self, node: ast.Compare) -> pc.Expression:
        out = None
        left = node.left
        for op, right in zip(node.ops, node.comparators):
            part = self.one_comparison(left, op, right)
            out = part if out is None else out & part
            left = right
        return out

    def one_comparison(self, left: ast.expr, op: ast.cmpop, right: ast.expr) -> pc.Expression:
        if isinstance(op, (ast.Is, ast.IsNot)):
            if not self.is_null_literal(right):
                raise ManifestError("filter: 'is' / 'is not' only compare with None (or null)")
            test = self.column(left).is_null()
            return test if isinstance(op, ast.Is) else ~test
        if isinstance(op, (ast.In, ast.NotIn)):
            column = self.column(left)
            if not isinstance(right, (ast.List, ast.Tuple, ast.Set)):
                raise ManifestError("filter: 'in' needs a list of literals, like x in [1, 2]")
            values = [self.literal(v, self.column_type(left)) for v in right.elts]
            test = column.isin(values)
            return test if isinstance(op, ast.In) else ~test
        if type(op) not in _COMPARE:
            return self.reject(op)
        if self.is_null_literal(left) or self.is_null_literal(right):
            raise ManifestError("filter: compare with None using 'is None' / 'is not None'")
        if not self.is_column(left) and self.is_column(right):
            left, right, op = right, left, _FLIPPED[type(op)]()
        column = self.column(left)
        if self.is_column(right):
            other = self.column(right)
        else:
            other = self.literal(right, self.column_type(left))
        return _COMPARE[type(op)](column, other)

    def is_column(self, node: ast.expr) -> bool:
        return isinstance(node, ast.Name) and node.id not in _NULL_NAMES

    def is_null_literal(self, node: ast.expr) -> bool:
        return (isinstance(node, ast.Constant) and node.value is None) or (
            isinstance(node, ast.Name) and node.id in _NULL_NAMES and node.id not in self.schema.names
        )

    def column(self, node: ast.expr) -> pc.Expression:
        if not isinstance(node, ast.Name):
            raise ManifestError(f"filter: expected a column name, got {_describe(node)}")
        self.column_type(node)
        return pc.field(node.id)

    def column_type(self, node: ast.expr) -> pa.DataType:
        name = node.id if isinstance(node, ast.Name) else None
        if name is None:
            raise ManifestError(f"filter: expected a column name, got {_describe(node)}")
        if name not in self.schema.names:
            raise ManifestError(f"filter: unknown column {name!r}; columns are: {', '.join(self.schema.names)}")
        return self.schema.field(name).type

    def literal(self, node: ast.expr, column_type: pa.DataType) -> object:
        value: object
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
            value = -node.operand.value if _is_number(node.operand.value) else None
        elif isinstance(node, ast.Constant):
            value = node.value
        else:
            return self.reject(node)
        if value is None or not isinstance(value, (str, int, float, bool)):
            raise ManifestError(f"filter: unsupported literal {_short(node)}")
        if isinstance(value, int) and not isinstance(value, bool) and not _INT64[0] <= value <= _INT64[1]:
            raise ManifestError(f"filter: integer literal {_short(node)} is outside the 64-bit range")
        if isinstance(value, float) and not math.isfinite(value):
            raise ManifestError(f"filter: number literal {_short(node)} is not finite")
        if not _literal_fits(value, column_type):
            raise ManifestError(f"filter: literal {_short(node)} does not match column type {column_type}")
        return value

    def reject(self, node: ast.AST) -> pc.Expression:
        raise ManifestError(f"filter: {_describe(node)} is not allowed; allowed: {_ALLOWED}")


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _literal_fits(value: object, column_type: pa.DataType) -> bool:
    if pa.types.is_boolean(column_type):
        return isinstance(value, bool)
    if pa.types.is_integer(column_type) or pa.types.is_floating(column_type):
        return _is_number(value)
    if pa.types.is_string(column_type) or pa.types.is_large_string(column_type):
        return isinstance(value, str)
    return False


def _short(node: ast.AST, limit: int = 40) -> str:
    text = ast.unparse(node)
    return text if len(text) <= limit else f"{text[:limit]}..."


def _describe(node: ast.AST) -> str:
    text = _short(node) if isinstance(node, ast.expr) else type(node).__name__
    return f"{type(node).__name__} ({text})" if isinstance(node, ast.expr) else text
