"""Expectation-maximisation for softmax mixtures (docs/math.md#em).

One module per idea, re-exported here name by name:

- :mod:`.kernel` — the EM map, a pure ``em_init``/``em_update`` pair over
  :class:`EMState` on any data layout; ``em_update`` returns ``(state, info)``.
- :mod:`.squarem` — SQUAREM as a wrapper of the update (its adaptive step in the state).
- :mod:`.lbfgs` — quasi-Newton (L-BFGS) acceleration, the EM step as its preconditioner.
- :mod:`.greedy` — the data-driven starts (``split``, ``clusters``).
- :mod:`.assumptions` — whether the moment starts' assumptions hold at an estimate.
- :mod:`.driver` — algorithms as ``init``/``step`` pairs over any parameter tuple, with their
  stopping test (the mixture's by default), the one jitted loop (short runs of every start,
  the best continued; or every start to convergence), padded to shape buckets.
- :mod:`.starts` — the registry of starting points (one vocabulary of names).
- :mod:`.api` — :func:`fit_em` and :class:`EMResult`; :func:`fit_components`, the EM fit chosen by the data.
"""

from ..core.params import WEIGHT_FLOOR as WEIGHT_FLOOR
from .api import PARAMETER_CONSTRAINTS as PARAMETER_CONSTRAINTS
from .api import ConvergenceWarning as ConvergenceWarning
from .api import EMResult as EMResult
from .api import fit_components as fit_components
from .api import fit_em as fit_em
from .assumptions import MomentAssumptions as MomentAssumptions
from .assumptions import check_moment_assumptions as check_moment_assumptions
from .driver import ACCELERATIONS as ACCELERATIONS
from .driver import EMAlgorithm as EMAlgorithm
from .driver import RunOut as RunOut
from .driver import em_algorithm as em_algorithm
from .driver import iterations_bucket as iterations_bucket
from .driver import run as run
from .driver import run_starts as run_starts
from .driver import starts_bucket as starts_bucket
from .kernel import M_STEPS as M_STEPS
from .kernel import EMInfo as EMInfo
from .kernel import EMState as EMState
from .kernel import em_init as em_init
from .kernel import em_update as em_update
from .lbfgs import LBFGSInfo as LBFGSInfo
from .lbfgs import LBFGSState as LBFGSState
from .lbfgs import lbfgs_init as lbfgs_init
from .lbfgs import lbfgs_update as lbfgs_update
from .squarem import SquaremInfo as SquaremInfo
from .squarem import SquaremState as SquaremState
from .squarem import squarem_init as squarem_init
from .squarem import squarem_update as squarem_update
from .starts import INIT_NAMES as INIT_NAMES
from .starts import START_METHODS as START_METHODS
from .starts import StartMethod as StartMethod
from .starts import build_starts as build_starts
from .starts import register_start as register_start

__all__ = [
    "fit_em",
    "fit_components",
    "EMResult",
    "ConvergenceWarning",
    "MomentAssumptions",
    "check_moment_assumptions",
    "PARAMETER_CONSTRAINTS",
    "EMState",
    "EMInfo",
    "em_init",
    "em_update",
    "M_STEPS",
    "SquaremState",
    "SquaremInfo",
    "squarem_init",
    "squarem_update",
    "LBFGSState",
    "LBFGSInfo",
    "lbfgs_init",
    "lbfgs_update",
    "EMAlgorithm",
    "em_algorithm",
    "ACCELERATIONS",
    "RunOut",
    "run",
    "run_starts",
    "starts_bucket",
    "iterations_bucket",
    "StartMethod",
    "START_METHODS",
    "INIT_NAMES",
    "build_starts",
    "register_start",
    "WEIGHT_FLOOR",
]
