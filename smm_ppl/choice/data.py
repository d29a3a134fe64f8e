"""Choice data in the long format of discrete-choice practice, validated into a layout.

One row per (choice situation, alternative), as biogeme, apollo, larch and
mlogit users hold them in pandas: a situation id, an alternative id, the
chosen flag (or a count), feature columns, optionally an availability flag
and a person id (a panel), and optionally person covariates for the
class-membership model.  :func:`choice_data` checks all of it and builds
:class:`~smm_ppl.layouts.choices.ChoiceSituations` (unavailable rows dropped,
rows sorted by situation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..layouts.choices import ChoiceSituations, choice_situations

__all__ = ["ChoiceData", "choice_data", "CONSTANT"]

#: The name of the membership model's constant.
CONSTANT = "const"

_SHOW = 5  # rows named in an error message


@dataclass(frozen=True, eq=False)
class ChoiceData:
    """Validated choice data (build with :func:`choice_data`).

    Attributes
    ----------
    layout : ChoiceSituations
        Rows are the available alternatives; units are persons in a panel,
        else situations.
    feature_names : tuple of str
    alternatives : (R,) ndarray
        The alternative id of each row.
    situations : (S,) ndarray
        The situation id of each situation, in layout order.
    units : (U,) ndarray
        The id of each unit: the person id in a panel, else the situation id.
    clusters : (U,) int ndarray or None
        The person of each unit, ``0 .. n_persons-1``, when the data name
        persons: robust standard errors cluster the scores by person.
    covariates : (U, C) ndarray
        The class-membership covariates of each unit, the constant first.
    covariate_names : tuple of str
    panel : bool
        Whether the class belongs to the person (units are persons).
    """

    layout: ChoiceSituations
    feature_names: tuple[str, ...]
    alternatives: np.ndarray
    situations: np.ndarray
    units: np.ndarray
    clusters: np.ndarray | None
    covariates: np.ndarray
    covariate_names: tuple[str, ...]
    panel: bool

    @property
    def n_situations(self) -> int:
        return self.layout.n_situations

    @property
    def n_units(self) -> int:
        return self.layout.n_units

    @property
    def n_obs(self) -> int:
        return self.layout.n_obs

    @property
    def n_features(self) -> int:
        return self.layout.n_features

    def __repr__(self) -> str:
        kind = f", {self.n_units} persons (panel)" if self.panel else ""
        return (
            f"ChoiceData({self.n_obs} choices, {self.n_situations} situations{kind}, "
            f"{self.layout.n_rows} available alternatives, features={list(self.feature_names)}, "
            f"membership covariates={list(self.covariate_names)})"
        )


def _rows(index: pd.Index, mask: np.ndarray) -> str:
    labels = index[np.asarray(mask)]
    shown = ", ".join(map(str, labels[:_SHOW]))
    more = f" and {len(labels) - _SHOW} more" if len(labels) > _SHOW else ""
    return f"{len(labels)} row(s) (index {shown}{more})"


def _ids(values: Any) -> str:
    values = list(values)
    shown = ", ".join(map(str, values[:_SHOW]))
    more = f" and {len(values) - _SHOW} more" if len(values) > _SHOW else ""
    return f"{shown}{more}"


def _column(frame: pd.DataFrame, name: Any, arg: str) -> pd.Series:
    if not isinstance(name, str):
        raise TypeError(f"{arg} must be a column name (str), got {type(name).__name__}.")
    if name not in frame.columns:
        raise ValueError(f"{arg}={name!r} is not a column of the data; its columns are {list(frame.columns)}.")
    return frame[name]


def _numeric(frame: pd.DataFrame, name: str, arg: str) -> np.ndarray:
    col = _column(frame, name, arg)
    if pd.api.types.is_bool_dtype(col):
        col = col.astype(np.int64)
    if not pd.api.types.is_numeric_dtype(col):
        raise TypeError(
            f"{arg} column {name!r} is not numeric (dtype {col.dtype}); convert it (e.g. pd.to_numeric) "
            "or encode categories as 0/1 columns."
        )
    values = col.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(
            f"{arg} column {name!r} has NaN or infinite values in {_rows(frame.index, bad)}; "
            "drop or impute those rows first."
        )
    return values


def _names(value: Any, arg: str, *, allow_empty: bool = False) -> list[str]:
    if isinstance(value, str):
        value = [value]
    try:
        names = list(value)
    except TypeError:
        raise TypeError(f"{arg} must be a list of column names, got {type(value).__name__}.") from None
    if not names and not allow_empty:
        raise ValueError(f"{arg} must name at least one column.")
    for n in names:
        if not isinstance(n, str):
            raise TypeError(f"{arg} must hold column names (str), got {n!r}.")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{arg} names column(s) {dup} more than once.")
    return names


def choice_data(
    frame: Any,
    *,
    situation: str,
    alternative: str,
    choice: str,
    features: Any,
    availability: str | None = None,
    person: str | None = None,
    covariates: Any = None,
    panel: bool | None = None,
) -> ChoiceData:
    """Validate long-format choice data into a :class:`ChoiceData`.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per (situation, alternative).
    situation, alternative : str
        Columns of the situation id and the alternative id.
    choice : str
        Column of the chosen flag (0/1) or the number of times chosen.
    features : list of str
        Feature columns; the coefficients are named after them.
    availability : str, optional
        Column of 0/1 availability; unavailable rows are dropped (they carry
        no mass in their situation's softmax).
    person : str, optional
        Column of the person id: a panel, the class drawn once per person
        (unless ``panel=False``: then only the robust standard errors cluster
        by person).
    covariates : list of str or pandas.DataFrame, optional
        Person covariates of the class-membership model: columns of ``frame``
        constant within each person (or situation), or a table indexed by
        person id.  A constant is always included, named ``"const"``.
    panel : bool, optional
        Default: a panel when ``person`` is given.

    Raises
    ------
    TypeError, ValueError
        Naming the argument and the offending rows, situations or persons:
        missing or non-numeric columns, NaN features, duplicated (situation,
        alternative) rows, a person id that changes within a situation, a
        chosen alternative that is unavailable, a situation with no chosen
        or no available alternative, a feature constant within every
        situation (its coefficient is unidentified).
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(
            f"frame must be a pandas DataFrame in long format (one row per situation and alternative), "
            f"got {type(frame).__name__}."
        )
    if len(frame) == 0:
        raise ValueError("frame has no rows.")
    feature_names = _names(features, "features")
    if panel is not None and not isinstance(panel, bool):
        raise TypeError(f"panel must be True, False or None, got {panel!r}.")
    if panel and person is None:
        raise ValueError("panel=True needs person= (the column of the person id).")
    panel = bool(person is not None if panel is None else panel)
    frame = frame.reset_index(drop=False) if not frame.index.is_unique else frame

    sit_col = _column(frame, situation, "situation")
    alt_col = _column(frame, alternative, "alternative")
    for name, col in (("situation", sit_col), ("alternative", alt_col)):
        if col.isna().any():
            raise ValueError(f"{name} column {col.name!r} is missing in {_rows(frame.index, col.isna().to_numpy())}.")
    chosen = _numeric(frame, choice, "choice")
    if (chosen < 0).any() or (chosen != np.round(chosen)).any():
        bad = (chosen < 0) | (chosen != np.round(chosen))
        raise ValueError(
            f"choice column {choice!r} must hold 0/1 flags or non-negative whole counts; "
            f"{_rows(frame.index, bad)} do not."
        )
    x = np.column_stack([_numeric(frame, f, "features") for f in feature_names])
    if availability is None:
        avail = np.ones(len(frame), dtype=bool)
    else:
        a = _numeric(frame, availability, "availability")
        if not np.isin(a, (0.0, 1.0)).all():
            raise ValueError(
                f"availability column {availability!r} must hold 0/1; {_rows(frame.index, ~np.isin(a, (0.0, 1.0)))} do not."
            )
        avail = a > 0

    dup = frame.duplicated([situation, alternative], keep=False).to_numpy()
    if dup.any():
        raise ValueError(
            f"duplicated (situation, alternative) pairs in {_rows(frame.index, dup)}: each alternative may "
            "appear once per situation; aggregate repeated choices into a count instead."
        )
    if person is not None:
        per_col = _column(frame, person, "person")
        if per_col.isna().any():
            raise ValueError(f"person column {person!r} is missing in {_rows(frame.index, per_col.isna().to_numpy())}.")
        n_persons = frame.groupby(situation, sort=False)[person].nunique()
        changing = n_persons.index[n_persons.to_numpy() > 1]
        if len(changing):
            raise ValueError(
                f"the person id changes within situation(s) {_ids(changing)}: a situation belongs to one person. "
                "Check the situation and person columns."
            )
    unavailable_choice = (chosen > 0) & ~avail
    if unavailable_choice.any():
        raise ValueError(
            f"a chosen alternative is unavailable in {_rows(frame.index, unavailable_choice)}; "
            "fix the availability or the choice column."
        )
    sit_avail = pd.Series(avail, index=frame.index).groupby(sit_col.to_numpy(), sort=False).sum()
    none_avail = sit_avail.index[sit_avail.to_numpy() == 0]
    if len(none_avail):
        raise ValueError(f"situation(s) {_ids(none_avail)} have no available alternative; drop them before fitting.")
    sit_chosen = pd.Series(chosen, index=frame.index).groupby(sit_col.to_numpy(), sort=False).sum()
    none_chosen = sit_chosen.index[sit_chosen.to_numpy() == 0]
    if len(none_chosen):
        raise ValueError(
            f"situation(s) {_ids(none_chosen)} have no chosen alternative (choice column {choice!r} is 0 "
            "in all their rows); drop them or fix the choice column."
        )

    # Keep the available rows, ordered by (person,) situation, stable within.
    keep = np.flatnonzero(avail)
    sub = pd.DataFrame({"_sit": sit_col.to_numpy()[keep]})
    if person is not None:
        sub["_per"] = frame[person].to_numpy()[keep]
    sub["_first"] = sub.groupby("_sit", sort=False).ngroup()
    order = np.lexsort(
        [np.arange(len(sub)), sub["_first"].to_numpy()] + ([pd.factorize(sub["_per"])[0]] if person is not None else [])
    )
    rows = keep[order]
    sit_codes, sit_ids = pd.factorize(sit_col.to_numpy()[rows], sort=False)
    x = x[rows]
    counts = chosen[rows]

    # Identification: a feature must vary within some situation.
    n_sit = len(sit_ids)
    lo = np.full((n_sit, x.shape[1]), np.inf)
    hi = np.full((n_sit, x.shape[1]), -np.inf)
    np.minimum.at(lo, sit_codes, x)
    np.maximum.at(hi, sit_codes, x)
    varies = (hi - lo > 1e-12 * np.maximum(np.abs(hi), 1.0)).any(axis=0)
    if not varies.all():
        bad = [feature_names[i] for i in np.flatnonzero(~varies)]
        raise ValueError(
            f"feature(s) {bad} are constant within every situation (over the available alternatives): a "
            "softmax per situation ignores them, so their coefficients are unidentified. Drop them, or "
            "interact them with alternative-specific constants."
        )

    first_row = np.r_[0, np.flatnonzero(np.diff(sit_codes)) + 1]
    if person is not None:
        person_of_sit = frame[person].to_numpy()[rows][first_row]
        per_codes, per_ids = pd.factorize(person_of_sit, sort=False)
    if panel:
        unit_of_sit, unit_ids = per_codes, np.asarray(per_ids)
        clusters = np.arange(len(unit_ids))
    else:
        unit_of_sit, unit_ids = np.arange(n_sit), np.asarray(sit_ids)
        clusters = per_codes.astype(np.int64) if person is not None else None

    cov_names, cov = _covariates(
        frame, covariates, rows, first_row, unit_of_sit, len(unit_ids), unit_ids, person if panel else situation
    )
    layout = choice_situations(x, counts, sit_codes, unit_of_sit)
    return ChoiceData(
        layout=layout,
        feature_names=tuple(feature_names),
        alternatives=alt_col.to_numpy()[rows],
        situations=np.asarray(sit_ids),
        units=unit_ids,
        clusters=clusters,
        covariates=cov,
        covariate_names=tuple(cov_names),
        panel=panel,
    )


def _covariates(frame, covariates, rows, first_row, unit_of_sit, n_units, unit_ids, unit_column):
    """The membership design (U, C): the constant, then the covariates, one row per unit."""
    names = [CONSTANT]
    columns = [np.ones(n_units)]
    if covariates is None:
        return names, np.column_stack(columns)
    if isinstance(covariates, pd.DataFrame):
        table = covariates
        extra = _names(list(table.columns), "covariates")
        missing = [u for u in unit_ids if u not in table.index]
        if missing:
            raise ValueError(
                f"covariates table has no row for {len(missing)} {unit_column} id(s) ({_ids(missing)}); "
                f"index it by the {unit_column} id and cover every one."
            )
        if not table.index.is_unique:
            raise ValueError("covariates table has a duplicated index: one row per person.")
        aligned = table.loc[list(unit_ids)]
        for name in extra:
            columns.append(_numeric(aligned, name, "covariates"))
            names.append(name)
    else:
        extra = _names(covariates, "covariates", allow_empty=True)
        for name in extra:
            values = _numeric(frame, name, "covariates")[rows]
            by_unit = np.full(n_units, np.nan)
            by_unit[unit_of_sit] = values[first_row]
            columns.append(by_unit)
            names.append(name)
        _check_within_unit(frame, extra, rows, first_row, unit_of_sit, unit_column)
    if CONSTANT in names[1:]:
        raise ValueError(f"covariates may not be named {CONSTANT!r}: the constant is always included.")
    z = np.column_stack(columns)
    for j, name in enumerate(names[1:], start=1):
        if np.ptp(z[:, j]) <= 1e-12 * max(np.abs(z[:, j]).max(), 1.0):
            raise ValueError(
                f"covariate {name!r} is the same for every {unit_column}: it duplicates the constant. Drop it."
            )
    if np.linalg.matrix_rank(z) < z.shape[1]:
        raise ValueError(f"covariates {names[1:]} are linearly dependent (with the constant); drop redundant ones.")
    return names, z


def _check_within_unit(frame, names, rows, first_row, unit_of_sit, unit_column):
    sit_of_row = np.repeat(np.arange(len(first_row)), np.diff(np.r_[first_row, len(rows)]))
    unit_of_row = unit_of_sit[sit_of_row]
    for name in names:
        values = frame[name].to_numpy(dtype=np.float64)[rows]
        ref = np.full(unit_of_sit.max() + 1, np.nan)
        ref[unit_of_row[::-1]] = values[::-1]
        bad = np.abs(values - ref[unit_of_row]) > 1e-12 * np.maximum(np.abs(values), 1.0)
        if bad.any():
            raise ValueError(
                f"covariate {name!r} changes within a {unit_column} in {_rows(frame.index[rows], bad)}: "
                "membership covariates describe the person; use a person-level table or constant columns."
            )
