# cython: language_level=3
"""The OpenMP runtime of the engine's compiled modules (see ``threads.py``).

Imported first, by ``skvq/_engine/__init__.py``: loading it loads the
runtime, whose settings are read then.
"""

from skvq._engine._common cimport omp_get_max_threads


def max_threads():
    """OpenMP's limit on the threads of a parallel step (1 without OpenMP).

    ``OMP_NUM_THREADS`` as the runtime read it, or the limit that
    :func:`threadpoolctl.threadpool_limits` set in the calling thread.
    """
    return omp_get_max_threads()
