"""What an overwrite records of its rows (``content_metadata``: a fingerprint; the commit counts the rows) and the
fingerprint ingest compares with it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jobs.ingest import fingerprint
from jobs.platform.tables import TableContent, content_metadata, parse_content

FRAME = pd.DataFrame({"carrier": ["UA", "AA", None], "dep_delay": [1.0, np.nan, -3.0], "flight": [1, 2, 3]})


def test_the_content_a_commit_records_is_read_back_from_its_metadata_with_the_rows_it_wrote():
    assert content_metadata("0f3a") == "mlops-content 0f3a"
    assert parse_content("mlops-content 0f3a", 4, 12) == TableContent("0f3a", 12, 4)
    # a commit of the earlier format recorded the count after the fingerprint: that count is taken
    assert parse_content("mlops-content 0f3a 12", 4, 0) == TableContent("0f3a", 12, 4)


@pytest.mark.parametrize(
    "metadata", [None, "", "mlops-append score 3", "mlops-content", "mlops-content XY", "mlops-content 0f3a x"]
)
def test_a_commit_that_recorded_no_content_has_none(metadata):
    assert parse_content(metadata, 1, 5) is None


@pytest.mark.parametrize("digest", ["", "0F3A", "0f 3a", "0f3a 12"])
def test_content_needs_a_lowercase_hex_fingerprint(digest):
    with pytest.raises(ValueError, match="hex fingerprint"):
        content_metadata(digest)


def test_the_same_rows_have_the_same_fingerprint_whatever_the_index():
    assert fingerprint(FRAME) == fingerprint(FRAME.copy().set_axis([7, 8, 9]))
    assert len(fingerprint(FRAME)) == 40


@pytest.mark.parametrize(
    "changed",
    [
        FRAME.assign(dep_delay=[1.0, 0.0, -3.0]),  # a value (a missing one filled)
        FRAME.iloc[[1, 0, 2]],  # the order of the rows
        FRAME.iloc[:2],  # a row fewer
        FRAME.rename(columns={"flight": "flight_number"}),  # a column's name
        FRAME.astype({"flight": "float64"}),  # a column's type
        FRAME[["dep_delay", "carrier", "flight"]],  # the order of the columns
    ],
)
def test_any_change_to_the_rows_changes_the_fingerprint(changed):
    assert fingerprint(changed) != fingerprint(FRAME)


def test_rows_pandas_cannot_hash_have_no_fingerprint():
    assert fingerprint(pd.DataFrame({"items": [[1, 2], [3]]})) is None
