"""The models this project runs: one package per model (``models/<name>/``), each declaring itself in ``spec.py``
(``spec.model.ModelSpec``) and providing its data and estimator code in ``__init__.py`` (``jobs.platform.model``).

The platform imports a model by the name config gives it (``spec.model.load_model_spec``), never by a fixed import.
"""
