"""How many threads the compiled loops use, and how they wait.

A fit makes hundreds of short parallel steps (one per Lloyd pass). OpenMP
threads that spin while they wait for the next step burn the time slices of
a busy machine's other processes, and of their own team: with the cores
shared, the spinning made fits 10 to 20 times slower than one thread.
``skvq._engine`` therefore loads its OpenMP runtime with a passive wait
policy (see ``skvq/_engine/__init__.py``), and each step asks for threads
only when its work is worth them.
"""

from __future__ import annotations

import contextlib
import functools
import os

# Work per thread of each parallel step (see for_work): distinct rows of
# Lloyd's passes, grid cells whose candidates are listed, points of a
# seeding, colors counted, looked up or gathered. On less, a thread's
# wake-up costs more than it saves.
LLOYD_ROWS = 10_000
GRID_CELLS = 100
SEEDING_POINTS = 20_000
COLORS = 1 << 19
# Squared-distance terms of a pass of scikit-learn's KMeans (or of a chunk of
# MiniBatchKMeans) per thread. With one BLAS thread (see spare_threads), two
# OpenMP threads took 0.56 to 1.02 times the time of one for KMeans on an
# idle machine from load_digits at K = 8 (0.9 million terms) up; on chunks of
# 500 rows of 0.26 million terms or less, MiniBatchKMeans took up to 1.16
# times as long on two.
KMEANS_WORK = 250_000

# Users who chose how OpenMP threads wait keep their choice (libgomp, LLVM).
_WAIT_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


# How skvq's OpenMP threads wait: they sleep (passive), after spinning a
# thousand times (libgomp: about 10 microseconds), as the steps of a pass
# follow each other closely. Woken from sleep for every step, the threads
# made quantize_image 1.04 to 1.29 times as long as libgomp's default wait
# (3 ms of spinning) on an idle machine (china, the 24 MP mosaic; K = 16
# and 256); with the short spin, 0.82 to 1.16 times, and with two busy
# processes on the 2 cores, 0.83 to 0.89 times one thread's time
# (benchmarks/bench_threads.py).
_WAITING = {"OMP_WAIT_POLICY": "passive", "GOMP_SPINCOUNT": "1000"}


@contextlib.contextmanager
def passive_waiting():
    """While an OpenMP runtime loads: its idle threads will sleep, not spin
    (but for a few microseconds, see ``_WAITING``).

    OpenMP reads these variables once, when its runtime initialises; they
    are set only for that moment, so that neither other libraries loaded
    later nor child processes inherit them.
    """
    if any(name in os.environ for name in _WAIT_SETTINGS):
        yield
        return
    os.environ.update(_WAITING)
    try:
        yield
    finally:
        for name in _WAITING:
            os.environ.pop(name, None)


@functools.cache
def _cpu_quota():
    """CPUs this process may use by its cgroup quota (joblib reads it)."""
    import joblib

    return joblib.cpu_count()


def available():
    """Threads a parallel step may use.

    The least of OpenMP's own limit (``OMP_NUM_THREADS``,
    :func:`threadpoolctl.threadpool_limits`, or joblib's limit on the
    threads of its worker processes), the CPUs this process may run on, and
    its cgroup CPU quota.
    """
    from . import _openmp

    return max(1, min(_openmp.max_threads(), _cpus(), _cpu_quota()))


def _cpus():
    """CPUs this process may run on now (its affinity can change)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on macOS and Windows
        return os.cpu_count() or 1


def for_work(work, per_thread):
    """Threads for ``work`` units of which each thread needs ``per_thread``.

    One thread below ``2 * per_thread`` units: a parallel step costs a
    thread's wake-up, which small work does not repay.
    """
    if work < 2 * per_thread:
        return 1
    return max(1, min(available(), work // max(per_thread, 1)))


@functools.cache
def _controller():
    """threadpoolctl's view of the thread pools loaded (BLAS, OpenMP)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def spare():
    """Threads a step may use without taking CPUs from other processes:
    :func:`available`, less the threads of other processes running on the
    machine right now (Linux's count of runnable threads in
    ``/proc/loadavg``, less this process's own, which may still be spinning
    after a parallel step), at least one."""
    threads = available()
    cpus = os.cpu_count() or 1
    try:
        running = int(_read("/proc/loadavg").split()[3].split(b"/")[0])
        if cpus - (running - 1) >= threads:
            # Idle but for this thread: its own other threads cannot matter
            # (reading each one's state costs 15 to 20 microseconds).
            return threads
        own = sum(_is_running(task) for task in os.listdir("/proc/self/task"))
    except (OSError, ValueError, IndexError):
        return 1
    return max(1, min(threads, cpus - (running - own)))


def _is_running(task):
    """Whether a thread of this process is runnable now."""
    try:
        # The state follows the command name, which may hold spaces.
        return (
            _read(f"/proc/self/task/{task}/stat").rpartition(b")")[2].split()[0] == b"R"
        )
    except OSError:  # the thread ended
        return False


def _read(path):
    """A small file's bytes. Unbuffered: ``open`` in text mode cost half a
    millisecond for the few files of :func:`spare`, a tenth of a small fit."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        return os.read(descriptor, 4096)
    finally:
        os.close(descriptor)


def spare_threads(work):
    """A context in which other libraries' OpenMP pools run :func:`spare`
    threads for ``work`` (squared-distance terms of a pass, samples x
    clusters x features), and BLAS pools one.

    For work handed to scikit-learn's compiled loops: their OpenMP runtime
    is its own, loaded before skvq could ask it to wait passively, their
    loops split the work evenly between threads, and OpenBLAS's threads
    busy-wait. With one other process busy on the 2 cores, ``KMeans`` on
    ``load_digits`` or 4x4 image blocks took 5 to 30 times longer with its
    threads than with one; on an idle machine, its two threads took 0.8
    times the time of one (4x4 blocks, K = 256). So OpenMP gets all the CPUs
    on an idle machine, one as soon as other processes run, and one for
    less than twice ``KMEANS_WORK``. BLAS, one always: KMeans's passes ask
    for one BLAS thread themselves, and its seeding's products of a few
    candidates by all the samples, one per centroid, made the whole fit
    1.1 to 3 times longer on two BLAS threads than on one, idle
    (``load_digits``, 4x4 blocks; K = 8 to 256).
    """
    n_threads = 1 if work < 2 * KMEANS_WORK else min(spare(), work // KMEANS_WORK)
    limits = {"openmp": n_threads, "blas": 1}
    controller = _controller()
    if all(
        pool.num_threads == limits.get(pool.user_api, pool.num_threads)
        for pool in controller.lib_controllers
    ):
        # Setting a pool's limit, even to what it is, costs its threads'
        # restart: a millisecond, a tenth of KMeans on load_digits at K=8.
        return contextlib.nullcontext()
    return controller.limit(limits=limits)
