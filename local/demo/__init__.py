"""The main job, `mlops demo`: a year of MLOps on a model's real data, replayed on this machine (the demo
environment's model, or any model whose package says how to replay it: ``replays``).

- ``replays``: what a model package says about its replay (``models/<name>/replay.py``), and its loader;
- ``config``: the replay's model, window and the first champion's training (``ReplayConfig``);
- ``services``: the processes the demo supervises (dynalite, the webhook receiver, the serving gateway), its home,
  its lock, its signals and its quiet terminal;
- ``loop``: the weekly loop (``Replay``), prod's environment job graphs on the local runner;
- ``traffic``: the live requests to the serving gateway, and the inference rows they leave;
- ``references``: the never-retrained and the weekly-retrained references the loop is measured against;
- ``records``: what the replay measured (``ReplayResult``), the report's data;
- ``lifecycle``: the services, the replay inside them, and the report.

The CLI command (``cli.commands.demo``) keeps its arguments, its progress bars and its printing.
"""

from __future__ import annotations

from spec.errors import MlopsError


class ReplayError(MlopsError):
    """The replay cannot start or go on; the message says which option or step is wrong and why."""
