r"""The names of the study's result columns, defined once and imported wherever a table is read.

Log-likelihood quantities are in nats. ``pθ`` is the flow, ``p`` the truth, ``p̂`` the maximum-
likelihood Gaussian of the training set and ``pθ₀`` the flow at its initialisation, before training
(the two nulls besides the truth). A column with a standard error has a partner :func:`se`
(``"SE " + name``); a column of the model has a partner per null, :func:`of` (``name + " [p̂]"``,
``name + " [untrained]"``), which :func:`~flowcore.studies.debruin2024.evaluation.null_view` puts in
the model's place.

Example:
    >>> se(H_STAR_QP), of(OVL_MODEL, "p̂"), of(OVL_MODEL, "untrained")
    ('SE H*(q,p)', 'OVL model [p̂]', 'OVL model [untrained]')
"""

from __future__ import annotations

# --- §4, one row per D (baseline.baseline_summary) ---------------------------------------------
H_P = "H(p)"
H_STAR_PP = "H*(p,p)"
H_STAR_P_MODEL = "H*(p,pθ)"
KL_STAR_P_MODEL = "KL*(p‖pθ)"
KL_P_MODEL_PAIRED = "KL*(p‖pθ) paired"
KL_P_HAT = "KL(p‖p̂)"
KL_STAR_P_HAT = "KL*(p‖p̂)"
SIGMA_MODEL = "σ repeats E[log pθ]"
SIGMA_TRUTH = "σ repeats E[log p]"
SIGMA_AT_1E6 = "σ at N=1e6 (scaled)"
EXACT_SE = "√(D/2N)"
OVL = "OVL"
#: KL*(p‖pθ) per dimension (nats per dimension): how well the flow fits p, comparable across D.
KL_PER_DIM = "KL*(p‖pθ)/D"
Z_H_STAR_PP = "z H*(p,p)"
Z_KL_STAR_P_HAT = "z KL*(p‖p̂)"

# --- §5–§8, one row per member q of a family (evaluation.evaluate_family) -----------------------
H_Q = "H(q)"
H_QP = "H(q,p)"
KL_QP = "KL(q‖p)"
H_STAR_QP = "H*(q,p)"
H_STAR_Q_MODEL = "H*(q,pθ)"
H_STAR_Q_HAT = "H*(q,p̂)"
H_STAR_Q_UNTRAINED = "H*(q,pθ₀)"
KL_STAR_QP = "KL*(q‖p)"
KL_STAR_Q_MODEL = "KL*(q‖pθ)"
KL_STAR_Q_HAT = "KL*(q‖p̂)"
KL_STAR_Q_UNTRAINED = "KL*(q‖pθ₀)"
#: E_q[log q − log p] from the same samples: a second Monte-Carlo route to KL(q‖p) (Proposition 1's
#: H*(q,p) − H(q) has exactly the z of H*(q,p), so it cannot test anything C2 does not).
KL_PAIRED_QP = "E_q[log q − log p]"
Z_H_STAR_QP = "z H*(q,p)"
VAR_TRUTH = "Var log p"
VAR_MODEL = "Var log pθ"
OVL_TRUTH = "OVL truth"
OVL_MODEL = "OVL model"
OVL_MODEL_VS_TRUTH = "OVL model vs truth"
GAP = "H*(q,pθ) − H*(q,p)"
SE_GAP = "SE gap"
DELTA_HC = "Δ_HC"
MEAN_SHIFT_MODEL = "mean log pθ − mean log pθ on Q(p)"
MEAN_SHIFT_TRUTH = "mean log p − mean log p on Q(p)"
TNR_TRUTH, TNR_MODEL, TNR_GAUSSIAN, TNR_UNTRAINED = (
    "TNR truth",
    "TNR model",
    "TNR gaussian",
    "TNR untrained",
)
AUROC_TRUTH, AUROC_MODEL, AUROC_GAUSSIAN, AUROC_UNTRAINED = (
    "AUROC truth",
    "AUROC model",
    "AUROC gaussian",
    "AUROC untrained",
)

#: Per score (truth, model, ML Gaussian, untrained flow): its Monte-Carlo cross-entropy, KL
#: estimate, TNR, AUROC.
CROSS_ENTROPY = {
    "truth": H_STAR_QP,
    "model": H_STAR_Q_MODEL,
    "gaussian": H_STAR_Q_HAT,
    "untrained": H_STAR_Q_UNTRAINED,
}
KL_STAR = {
    "truth": KL_STAR_QP,
    "model": KL_STAR_Q_MODEL,
    "gaussian": KL_STAR_Q_HAT,
    "untrained": KL_STAR_Q_UNTRAINED,
}
TNR = {"truth": TNR_TRUTH, "model": TNR_MODEL, "gaussian": TNR_GAUSSIAN, "untrained": TNR_UNTRAINED}
AUROC = {
    "truth": AUROC_TRUTH,
    "model": AUROC_MODEL,
    "gaussian": AUROC_GAUSSIAN,
    "untrained": AUROC_UNTRAINED,
}

#: Per null that stands in for the model (see :mod:`flowcore.verdicts`): the score it is computed
#: from, and the suffix of its partner columns.
NULL_SCORES = {"p̂": "gaussian", "untrained": "untrained"}
SUFFIX = {"p̂": " [p̂]", "untrained": " [untrained]"}


def se(column: str) -> str:
    """The name of ``column``'s standard-error column."""
    return f"SE {column}"


def of(column: str, null: str) -> str:
    """The name of ``column``'s partner for ``null`` (``"p̂"`` or ``"untrained"``)."""
    if null not in SUFFIX:
        raise ValueError(f"null must be one of {tuple(SUFFIX)}, got {null!r}")
    return column + SUFFIX[null]


#: The model's columns with a partner per null (the cross-entropy, KL, TNR and AUROC partners are
#: named in the dictionaries above).
MODEL_COLUMNS = (
    GAP,
    SE_GAP,
    DELTA_HC,
    VAR_MODEL,
    MEAN_SHIFT_MODEL,
    OVL_MODEL,
    OVL_MODEL_VS_TRUTH,
    KL_P_MODEL_PAIRED,
    se(KL_P_MODEL_PAIRED),
)
