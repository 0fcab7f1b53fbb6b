"""A study of Song et al. (2024), *Robustly Train Normalizing Flows via KL Divergence Regularization*
(AAAI 2024): the linear theory of their KL regulariser (a linear flow with a Gaussian base, whose maximum
likelihood fit, L2- and KL-regularised fits and pseudo-sample equivalence have closed forms, checked
against numerical optimisation in :mod:`flowcore.studies.song2024.linear`), as the basis for the deep
Jacobian regulariser (KLJ) the paper proposes for coupling flows.
"""
