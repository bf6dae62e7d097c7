"""Hyperparameter search with Optuna (`mlplab tune`): ``space`` (what may vary), ``study``
(the study folder and its Optuna journal), ``tuner`` (the search loop, :func:`tune`)."""
