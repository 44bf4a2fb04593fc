"""The exact K-Means engine behind :class:`skvq.VectorQuantizer`.

``kmeans`` fits and assigns: ``colors`` finds distinct rows, ``seeding``
seeds, ``lloyd`` drives Lloyd's passes on ``grid``'s candidate lists;
``stream`` keeps the state of ``partial_fit``; ``threads`` decides how many
threads each parallel step uses. The modules with a leading underscore are
their compiled loops.
"""

from .threads import passive_waiting

# The compiled loops load the OpenMP runtime: first of all, so that its
# threads never spin while they wait (see threads.py).
with passive_waiting():
    from . import _openmp  # noqa: F401
