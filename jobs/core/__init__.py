"""The jobs' logic as pure functions: DataFrames and numbers in, values out. No I/O, no globals, no clients.

- ``model``: the scikit-learn pipeline and the frame it takes
- ``evaluation``: metrics, overall and per slice
- ``decisions``: validation gates, champion-vs-challenger promotion, serving traffic split
- ``contract``: the model version tags the jobs write and read
"""
