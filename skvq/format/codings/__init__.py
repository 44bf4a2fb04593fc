"""Index codings: one module per coding, and the registry of them all.

Every coding is a :class:`~.base.Coding`: encode, decode (with ``partial``
for truncated data) and the exact data size when it is known in advance.
"""

from __future__ import annotations

from .base import Coding
from .context import CONTEXT
from .raw import RAW
from .runs import BZ2, ZSTD

# Coding id stored in HEAD -> coding.
CODINGS_BY_ID: dict[int, Coding] = {0: RAW, 1: ZSTD, 2: BZ2, 3: CONTEXT}
#: Index codings: name -> id stored in HEAD.
CODINGS: dict[str, int] = {coding.name: id_ for id_, coding in CODINGS_BY_ID.items()}
#: The codings ``coding="auto"`` chooses from: those that decode about as fast
#: as PNG does. "auto" is the default of Pillow's ``save``, ``skvq.save`` and
#: the CLI, so this tuple is where the default is decided. The context
#: coding is smaller but decodes 8 to 17 times slower than WebP, short of
#: issue 17's targets (``docs/filesize.md``), so it is not among them.
AUTO_CODINGS = ("raw", "zstd")


def coding_named(name: str) -> Coding:
    """The coding called ``name``."""
    return CODINGS_BY_ID[CODINGS[name]]
