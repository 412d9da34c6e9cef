"""The jobs' logic as pure functions: DataFrames and numbers in, values out. No I/O, no globals, no clients.

- ``model``: a model's input frame, labels, answers and signature, from its declaration
- ``split``: the deterministic sample and the held-out test period of a training window
- ``evaluation``: metrics of both problem types, overall and per slice
- ``decisions``: validation gates, champion-vs-challenger promotion, serving traffic split
- ``contract``: the model version tags the jobs write and read
"""
