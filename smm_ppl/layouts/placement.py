"""Where a layout's rows live: one device, or sharded over the rows on a 1-D device mesh.

A *placement* is ``None`` (JAX's default device) or a one-axis
:class:`jax.sharding.Mesh` whose axis is :data:`ROWS_AXIS`.  A layout placed
on a mesh holds every per-row array (features, counts, the mask) split into
equal contiguous blocks of rows, one per device, and its transposed features
split the same way along their columns.  The compiled programs are the same
Python functions: XLA partitions them from the arrays' shardings, so the work
per row stays on the device holding the row, and only what is summed over
rows crosses devices (the ``K`` normalisers and log-likelihood terms, the
``K x L`` gradient, the ``L x L`` Hessian blocks).

Sharding needs a number of rows divisible by the number of devices: layouts
are placed through their padding (:meth:`ItemCounts.padded`), whose rows
carry no mass.

Several processes (``jax.distributed``): a mesh whose devices belong to
several processes makes each process hold only its own rows.  Each gives
its own block of items; the global data are the blocks in process order
(:func:`spans_processes`, :func:`process_local_rows`).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "ROWS_AXIS",
    "row_mesh",
    "mesh_of",
    "place_rows",
    "transpose_rows",
    "spans_processes",
    "process_gather",
    "process_local_rows",
]

#: The name of the mesh axis the rows are split over.
ROWS_AXIS = "rows"


def row_mesh(devices: Any) -> Mesh | None:
    """The placement a user's ``devices=`` argument asks for.

    ``None``: the default device (no mesh).  An int ``n``: the first ``n`` of
    :func:`jax.devices`.  A sequence of devices, or a one-axis
    :class:`~jax.sharding.Mesh` (under another axis name: the same devices on
    a mesh whose axis is :data:`ROWS_AXIS`).
    """
    if devices is None:
        return None
    if isinstance(devices, Mesh):
        if devices.devices.ndim != 1:
            raise ValueError(
                f"devices must be a one-axis Mesh (the rows are split along one axis); got a mesh of shape "
                f"{dict(devices.shape)}. Pass Mesh(devices.reshape(-1), ({ROWS_AXIS!r},)) or a list of devices."
            )
        if devices.axis_names == (ROWS_AXIS,):
            return devices
        return Mesh(devices.devices, (ROWS_AXIS,))
    if isinstance(devices, (bool, np.bool_)):
        raise TypeError(f"devices must be None, an int, a sequence of jax devices or a Mesh, got {devices!r}.")
    if isinstance(devices, (int, np.integer)):
        available = jax.devices()
        n = int(devices)
        if not 1 <= n <= len(available):
            raise ValueError(
                f"devices={n}: this process sees {len(available)} device(s) ({available[0].platform}). Ask for at "
                "most that many; for several CPU devices set XLA_FLAGS=--xla_force_host_platform_device_count=N "
                "(or jax.config.update('jax_num_cpu_devices', N)) before JAX starts."
            )
        chosen = available[:n]
    else:
        try:
            chosen = list(devices)
        except TypeError:
            raise TypeError(
                f"devices must be None, an int, a sequence of jax devices or a Mesh, got {type(devices).__name__}."
            ) from None
        if not chosen or not all(isinstance(d, jax.Device) for d in chosen):
            raise TypeError("devices must be a non-empty sequence of jax devices (from jax.devices()).")
        if len({d.id for d in chosen}) != len(chosen):
            raise ValueError("devices lists a device more than once; give each device once.")
    return Mesh(np.array(chosen, dtype=object), (ROWS_AXIS,))


def mesh_of(array: Any) -> Mesh | None:
    """The mesh an array's rows are split over, or ``None`` (one device, or not a JAX array)."""
    sharding = getattr(array, "sharding", None)
    if isinstance(sharding, NamedSharding) and sharding.mesh.size > 1 and ROWS_AXIS in sharding.mesh.axis_names:
        return sharding.mesh
    return None


def _put(array: Any, mesh: Mesh, spec: PartitionSpec) -> jax.Array:
    return jax.device_put(array, NamedSharding(mesh, spec))


def place_rows(array: Any, mesh: Mesh | None) -> Any:
    """``array`` (R, ...) split over ``mesh`` along its first axis; unchanged without a mesh."""
    if mesh is None:
        return array
    return _put(array, mesh, PartitionSpec(ROWS_AXIS))


def transpose_rows(array: jax.Array) -> jax.Array:
    """The contiguous transpose (L, R) of rows ``array`` (R, L), split along its columns as the rows were.

    Each device transposes its own block: no device holds the whole array.
    """
    mesh = mesh_of(array)
    if mesh is None:
        return jax.numpy.transpose(jax.numpy.asarray(array))
    return jax.jit(jax.numpy.transpose, out_shardings=NamedSharding(mesh, PartitionSpec(None, ROWS_AXIS)))(array)


def spans_processes(mesh: Mesh | None) -> bool:
    """Whether ``mesh`` has devices of other processes (then each process holds only its own rows)."""
    if mesh is None:
        return False
    me = jax.process_index()
    return any(d.process_index != me for d in mesh.devices.flat)


def process_gather(values: Any) -> np.ndarray:
    """``values`` (a host array) of every process, stacked along a new leading axis in process order."""
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(np.asarray(values)))


def process_local_rows(array: Any, mesh: Mesh) -> jax.Array:
    """The global array whose rows are every process's ``array`` (R_local, ...) in process order.

    Every process passes the same number of rows (a multiple of its devices
    in ``mesh``); each keeps only its own block.
    """
    return jax.make_array_from_process_local_data(NamedSharding(mesh, PartitionSpec(ROWS_AXIS)), np.asarray(array))
