from __future__ import annotations

import copy
import pickle

import pandas as pd
import pytest

from synthrelease.errors import PrivacyError
from synthrelease.private.table import SensitiveTable


@pytest.fixture
def table():
    return SensitiveTable(pd.DataFrame({"name": ["Alice-Secret"], "age": [41]}), label="people")


def test_refuses_pickling(table):
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(PrivacyError, match="refusing to pickle"):
            pickle.dumps(table, protocol=protocol)


def test_refuses_pickling_inside_a_container(table):
    with pytest.raises(PrivacyError):
        pickle.dumps({"payload": [table]})


def test_repr_and_str_show_no_rows(table):
    for text in (repr(table), str(table), f"{table}"):
        assert "Alice-Secret" not in text and "41" not in text
        assert "rows hidden" in text


def test_len_is_refused_because_the_row_count_is_private(table):
    with pytest.raises(PrivacyError):
        len(table)


def test_immutable_and_copies_do_not_clone_rows(table):
    with pytest.raises(AttributeError):
        table.extra = 1
    assert copy.deepcopy(table) is table
    assert table.reveal()["age"].tolist() == [41]
