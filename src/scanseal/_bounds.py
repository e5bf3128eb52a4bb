"""A nesting bound for recursive parsers, checked by a flat scan before they run.

``json`` (in C) and ``tomllib`` descend one call per level of arrays and tables. py-evm raises
the interpreter's recursion limit to 100,000 when it is imported, so neither stops on its own
before a deep enough document has overflowed the stack of the thread parsing it. Counting the
brackets outside strings needs no recursion, so the bound holds whatever the recursion limit is.
"""

from __future__ import annotations

import re

from scanseal.errors import InvalidInput

_OPEN = frozenset("[{")
_CLOSE = frozenset("]}")


def check_nesting(tokens: re.Pattern[str], text: str, what: str, limit: int) -> None:
    """Refuse ``text`` when its brackets nest deeper than ``limit``; InvalidInput naming ``what``.

    ``tokens`` matches the format's strings (and comments) whole and its brackets one at a
    time; only bracket matches count. On a well-formed prefix the scan agrees with the parser
    about where strings are, and a parser stops at the first malformed byte, so the parser can
    never be deeper than the depth counted here. A stray closing bracket never lowers the count
    below zero, which only errs on the side of refusing.
    """
    if text.count("[") + text.count("{") <= limit:  # the usual case, at memory speed
        return
    depth = 0
    for match in tokens.finditer(text):
        token = match.group()
        if token in _OPEN:
            depth += 1
            if depth > limit:
                raise InvalidInput(f"{what} nests deeper than {limit} levels")
        elif token in _CLOSE and depth:
            depth -= 1
