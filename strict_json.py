"""Reading JSON that a person wrote (config files, --set values): every way it
can be unreadable is a message naming the line or the key, never a traceback.

    value = load_file(path)      # JSONInputError (.line): not UTF-8, too deep, a key twice, invalid
    value = loads(text)          # the same for text; invalid JSON is json.JSONDecodeError

Python's json module leaves three things to its caller:
- bytes that are not UTF-8 (a Latin-1 é) raise UnicodeDecodeError, which
  names neither the file nor the line;
- nesting deeper than the interpreter's recursion limit (1000 brackets in a
  --set value, a file nested 3000 deep) raises RecursionError. A config
  holds at most four levels (section, key, a list of [height, width]), so
  anything deeper than MAX_DEPTH is refused before json sees it, naming the
  line;
- a key written twice in one object keeps the last value silently: a
  setting changed in one place and not the other. It is refused, naming the
  key and where it sits ("db.top_k").
"""

from __future__ import annotations

import json

MAX_DEPTH = 32  # levels of [] and {}; a config needs 4


class JSONInputError(ValueError):
    """JSON that cannot be used; the message says why (and the key), worded
    to follow 'file:line: ' or '--set key=value: '; `line`, where known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


def load_file(path: str):
    """The JSON value of the file at `path` (UTF-8, a byte-order mark allowed)."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise JSONInputError(f"not UTF-8 text (byte {data[e.start]:#04x}, column {column}); "
                             f"save the file as UTF-8", line) from None
    try:
        return loads(text)
    except json.JSONDecodeError as e:
        raise JSONInputError(f"not valid JSON: {e.msg}", e.lineno) from None


def loads(text: str):
    """The JSON value of `text`; JSONInputError when it nests deeper than
    MAX_DEPTH or repeats a key in one object, json.JSONDecodeError when it is
    not JSON."""
    deepest, line = _depth(text)
    if deepest > MAX_DEPTH:
        raise JSONInputError(f"nested more than {MAX_DEPTH} levels deep ({deepest}); a "
                             f"config holds at most 4", line)
    repeated = []

    def pairs(items):
        found = {}
        for key, value in items:
            if key in found:
                repeated.append((found, key))
            found[key] = value
        return found

    value = json.loads(text, object_pairs_hook=pairs)
    if repeated:
        where, key = repeated[0]
        named = ".".join(_path_to(value, where) + [key])
        raise JSONInputError(f"{named!r} is given twice; JSON would keep only the last value "
                             f"silently: remove one")
    return value


def _depth(text: str) -> tuple[int, int]:
    """The deepest nesting of [] and {} outside strings, and the line where
    MAX_DEPTH is first passed (or the deepest line)."""
    depth = deepest = 0
    line, passed = 1, 0
    in_string = escaped = False
    for character in text:
        if in_string:
            if escaped:
                escaped = False
            elif character == "\\":
                escaped = True
            elif character == '"':
                in_string = False
        elif character == '"':
            in_string = True
        elif character in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if depth == MAX_DEPTH + 1 and not passed:
                    passed = line
        elif character in "]}":
            depth -= 1
        if character == "\n":
            line += 1
    return deepest, passed or line


def _path_to(value, target) -> list[str]:
    """The keys (and [index]es) from `value` down to the object `target`."""
    stack = [(value, [])]
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        if isinstance(node, dict):
            stack += [(child, path + [str(key)]) for key, child in node.items()]
        elif isinstance(node, list):
            stack += [(child, path + [f"[{i}]"]) for i, child in enumerate(node)]
    return []
