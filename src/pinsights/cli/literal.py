"""Text from data or from a server, printed as itself: never as markup, never as a terminal control.

Names in an insights document come from whichever v5 server the client talks to; a quarantined
line from whatever export was built. Printed through Rich as a string, ``[/]`` in a metro's name
crashed ``pinsights insights`` (Rich's ``MarkupError``) and ``[link=https://…]`` became a clickable
link; printed at all, an escape sequence set the window's title or cleared the screen (a security
review, issue 18). So every such string goes through :func:`literal` — C0 and C1 control characters
and DEL shown as ``\\x1b`` — and reaches Rich as a :class:`~rich.text.Text` (:func:`cell`), which
Rich never parses as markup.

``--json`` prints the same document to a terminal and to a pipe: JSON escapes every C0 control
character itself (``\\u001b``), and :func:`json_text` escapes DEL and the C1 controls as well, so
the output is safe on a terminal and a program reading it gets exactly the data (an escape in
JSON is the character itself once parsed).
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text

#: Unicode's bidirectional embeddings, overrides and isolates. A right-to-left override in an
#: account's name turns the rest of the terminal line around, so a share or an id after it reads
#: backwards ("Trojan Source"); they are shown as ``\\u202e``. The marks (LRM, RLM, ALM) stay:
#: right-to-left names use them, and they reorder nothing beyond the characters beside them.
_BIDI = (*range(0x202A, 0x202F), *range(0x2066, 0x206A))
#: C0 controls, DEL, C1 controls and the bidirectional controls -> their escape, as a
#: str.translate table.
_SHOWN = {
    **{code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))},
    **{code: f"\\u{code:04x}" for code in _BIDI},
}
#: The same, but for text of several lines (a message): newlines and tabs stay.
_SHOWN_IN_LINES = {code: shown for code, shown in _SHOWN.items() if chr(code) not in "\n\t"}
#: What JSON leaves as it is among those (DEL; C1 and bidirectional controls when ensure_ascii is
#: off) -> a JSON escape.
_JSON = {code: f"\\u{code:04x}" for code in (0x7F, *range(0x80, 0xA0), *_BIDI)}


def literal(text: object, *, lines: bool = False) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``), for a terminal;
    with ``lines``, newlines and tabs kept (a message of several lines)."""
    return str(text).translate(_SHOWN_IN_LINES if lines else _SHOWN)


def cell(text: object, style: str = "") -> Text:
    """A Rich text of ``text`` as is: its ``[`` and ``]`` are characters, not markup."""
    return Text(literal(text), style=style)


def json_text(document: Any, **options: Any) -> str:
    """``json.dumps(document, **options)``, with DEL and C1 controls escaped too (``\\u009b``)."""
    return json.dumps(document, **options).translate(_JSON)
