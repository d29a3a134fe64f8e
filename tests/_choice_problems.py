"""Choice data for the tests: a latent-class panel simulator, Swissmetro in long format, and a NumPy oracle.

The oracle computes the latent-class logit log-likelihood from the long
DataFrame with plain NumPy loops over persons, independently of the layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parent / "data"


def simulate_panel(
    seed,
    atoms,
    *,
    n_persons=300,
    n_situations=6,
    n_alternatives=3,
    membership=None,
    shares=None,
    unavailable=0.0,
):
    """Long-format choices of ``n_persons`` persons, each answering ``n_situations`` situations.

    ``atoms`` (K, L) are the class coefficients.  Class membership: ``shares``
    (K,), or ``membership`` (2, K) coefficients of ``[const, income]`` with an
    ``income`` covariate ~ N(0, 1) per person.  ``unavailable``: probability
    that an alternative other than the first is unavailable.  Returns the
    frame and each person's true class.
    """
    rng = np.random.default_rng(seed)
    atoms = np.asarray(atoms, dtype=float)
    K, L = atoms.shape
    income = rng.normal(size=n_persons)
    if membership is not None:
        scores = np.column_stack([np.ones(n_persons), income]) @ np.asarray(membership, dtype=float)
        probs = np.exp(scores - scores.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
    else:
        probs = np.tile(np.full(K, 1.0 / K) if shares is None else np.asarray(shares, dtype=float), (n_persons, 1))
    classes = np.array([rng.choice(K, p=p) for p in probs])
    rows = []
    sid = 0
    for i in range(n_persons):
        for _ in range(n_situations):
            x = rng.normal(size=(n_alternatives, L))
            avail = np.ones(n_alternatives, dtype=int)
            avail[1:] = rng.random(n_alternatives - 1) >= unavailable
            u = x @ atoms[classes[i]]
            u = np.where(avail > 0, u, -np.inf)
            p = np.exp(u - u.max())
            p /= p.sum()
            y = rng.choice(n_alternatives, p=p)
            for a in range(n_alternatives):
                rows.append((f"p{i}", sid, a + 1, int(a == y), avail[a], income[i], *x[a]))
            sid += 1
    cols = ["person", "situation", "alternative", "chosen", "available", "income"] + [f"x{j + 1}" for j in range(L)]
    return pd.DataFrame(rows, columns=cols), classes


def swissmetro_long() -> pd.DataFrame:
    """Biogeme's Swissmetro sample (PURPOSE in {1, 3}, CHOICE != 0) in long format, as example 07discreteMixture codes it.

    Time is ``*_TT / 100``; cost is ``TRAIN_CO`` and ``SM_CO`` times ``(GA == 0)``
    and ``CAR_CO``, all ``/ 100``; train and car are available only when
    ``SP != 0``.  Alternatives: 1 train, 2 Swissmetro, 3 car.
    """
    wide = pd.read_csv(DATA / "swissmetro.csv.gz")
    sp = (wide["SP"] != 0).astype(int)
    no_ga = (wide["GA"] == 0).astype(int)
    parts = []
    for alt, name, cost, avail in (
        (1, "TRAIN", wide["TRAIN_CO"] * no_ga, wide["TRAIN_AV"] * sp),
        (2, "SM", wide["SM_CO"] * no_ga, wide["SM_AV"]),
        (3, "CAR", wide["CAR_CO"], wide["CAR_AV"] * sp),
    ):
        parts.append(
            pd.DataFrame(
                {
                    "obs": np.arange(len(wide)),
                    "person": wide["ID"],
                    "alternative": alt,
                    "chosen": (wide["CHOICE"] == alt).astype(int),
                    "available": avail,
                    "asc_car": float(alt == 3),
                    "asc_train": float(alt == 1),
                    "cost": cost / 100.0,
                    "time": wide[f"{name}_TT"] / 100.0,
                }
            )
        )
    return pd.concat(parts).sort_values(["obs", "alternative"], kind="stable").reset_index(drop=True)


class Oracle:
    """The latent-class logit log-likelihood in plain NumPy, from the long frame (independent of the layout).

    Situations are padded to the largest number of alternatives, unavailable
    ones masked; units (persons, or situations) in order of first appearance.
    """

    def __init__(self, frame, features, *, unit="person", available="available"):
        if available in frame:
            frame = frame[frame[available] > 0]
        sit_codes, _ = pd.factorize(frame["situation"])
        unit_codes, _ = pd.factorize(frame[unit])
        pos = frame.groupby(sit_codes).cumcount().to_numpy()
        S, J = sit_codes.max() + 1, pos.max() + 1
        self.x = np.zeros((S, J, len(features)))
        self.mask = np.zeros((S, J), dtype=bool)
        self.chosen = np.zeros((S, J))
        self.x[sit_codes, pos] = frame[features].to_numpy(dtype=float)
        self.mask[sit_codes, pos] = True
        self.chosen[sit_codes, pos] = frame["chosen"].to_numpy(dtype=float)
        self.unit_of_sit = np.zeros(S, dtype=int)
        self.unit_of_sit[sit_codes] = unit_codes
        self.n_units = unit_codes.max() + 1

    def unit_loglik(self, atoms, log_class_probs):
        """(U,) log L_u."""
        v = np.einsum("sjl,kl->ksj", self.x, np.asarray(atoms, dtype=float))
        v = np.where(self.mask, v, -np.inf)
        m = v.max(axis=2, keepdims=True)
        log_p = v - m - np.log(np.exp(v - m).sum(axis=2, keepdims=True))
        log_p = np.where(self.mask, log_p, 0.0)  # masked alternatives: -inf, never chosen
        per_sit = (self.chosen * log_p).sum(axis=2)  # (K, S)
        per_unit = np.zeros((atoms.shape[0], self.n_units))
        np.add.at(per_unit.T, self.unit_of_sit, per_sit.T)
        joint = per_unit.T + log_class_probs
        top = joint.max(axis=1, keepdims=True)
        return (top + np.log(np.exp(joint - top).sum(axis=1, keepdims=True)))[:, 0]


def oracle_unit_loglik(frame, features, atoms, log_class_probs, *, unit="person", available="available"):
    """(U,) log L_u by loops over units and situations, units in order of first appearance."""
    atoms = np.asarray(atoms, dtype=float)
    frame = frame[frame[available] > 0] if available in frame else frame
    out = []
    for u_idx, (_, rows) in enumerate(frame.groupby(unit, sort=False)):
        per_class = np.zeros(atoms.shape[0])
        for _, sit in rows.groupby("situation", sort=False):
            x = sit[features].to_numpy(dtype=float)
            c = sit["chosen"].to_numpy(dtype=float)
            for k in range(atoms.shape[0]):
                v = x @ atoms[k]
                per_class[k] += np.sum(c * (v - np.log(np.sum(np.exp(v - v.max()))) - v.max()))
        joint = per_class + log_class_probs[u_idx]
        out.append(np.log(np.sum(np.exp(joint - joint.max()))) + joint.max())
    return np.array(out)
