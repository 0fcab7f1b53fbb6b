r"""The names of the study's result columns, defined once and imported wherever a table is read.

Log-likelihood quantities are in nats. ``pθ`` is the flow, ``p`` the truth, ``p̂`` the maximum-
likelihood Gaussian of the training set (the control). A column with a standard error has a
partner :func:`se` (``"SE " + name``); a family-table column of the model has a control partner
:func:`control` (``name + " [p̂]"``), which :func:`~flowcore.studies.debruin2024.evaluation.control_view`
puts in the model's place.

Example:
    >>> se(H_STAR_QP), control(OVL_MODEL)
    ('SE H*(q,p)', 'OVL model [p̂]')
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
Z_H_STAR_PP = "z H*(p,p)"
Z_KL_STAR_P_HAT = "z KL*(p‖p̂)"

# --- §5–§8, one row per member q of a family (evaluation.evaluate_family) -----------------------
H_Q = "H(q)"
H_QP = "H(q,p)"
KL_QP = "KL(q‖p)"
H_STAR_QP = "H*(q,p)"
H_STAR_Q_MODEL = "H*(q,pθ)"
H_STAR_Q_HAT = "H*(q,p̂)"
KL_STAR_QP = "KL*(q‖p)"
KL_STAR_Q_MODEL = "KL*(q‖pθ)"
KL_STAR_Q_HAT = "KL*(q‖p̂)"
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
TNR_TRUTH, TNR_MODEL, TNR_GAUSSIAN = "TNR truth", "TNR model", "TNR gaussian"
AUROC_TRUTH, AUROC_MODEL, AUROC_GAUSSIAN = "AUROC truth", "AUROC model", "AUROC gaussian"

#: Per score (truth, model, ML Gaussian): its Monte-Carlo cross-entropy, KL estimate, TNR, AUROC.
CROSS_ENTROPY = {"truth": H_STAR_QP, "model": H_STAR_Q_MODEL, "gaussian": H_STAR_Q_HAT}
KL_STAR = {"truth": KL_STAR_QP, "model": KL_STAR_Q_MODEL, "gaussian": KL_STAR_Q_HAT}
TNR = {"truth": TNR_TRUTH, "model": TNR_MODEL, "gaussian": TNR_GAUSSIAN}
AUROC = {"truth": AUROC_TRUTH, "model": AUROC_MODEL, "gaussian": AUROC_GAUSSIAN}

#: The suffix of a model column's control partner.
CONTROL_SUFFIX = " [p̂]"


def se(column: str) -> str:
    """The name of ``column``'s standard-error column."""
    return f"SE {column}"


def control(column: str) -> str:
    """The name of ``column``'s ML-Gaussian control partner."""
    return column + CONTROL_SUFFIX
