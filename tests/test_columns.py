"""render.columns() lays out tables exactly as tabulate's "plain" format does, without its cost.

tabulate stays a test dependency as the reference: for random tables of the
text the renderer produces (escaped cells, so no control characters; several
lines joined by newlines; any Unicode), both must give the same string.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from tabulate import tabulate

from kubectl_cyclops.render import columns

LINE = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\x85"), max_size=12)
CELL = st.lists(LINE, min_size=1, max_size=3).map("\n".join)


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[list[str]], list[str]]:
    width = draw(st.integers(1, 5))
    rows = draw(st.lists(st.lists(CELL, min_size=width, max_size=width), min_size=1, max_size=6))
    headers = draw(st.one_of(st.just([]), st.lists(LINE, min_size=width, max_size=width)))
    return rows, headers


@settings(max_examples=300, deadline=None)
@given(tables())
def test_columns_lay_out_a_table_as_tabulate_plain_does(table: tuple[list[list[str]], list[str]]) -> None:
    rows, headers = table
    assert columns(rows, headers) == tabulate(rows, headers=headers, tablefmt="plain", disable_numparse=True)


def test_a_details_grid_the_way_render_uses_it() -> None:
    rows = [["Name:", "pi"], ["Conditions:", "Complete=True\nSuccessCriteriaMet=True"], ["Labels:", "<none>"]]
    assert columns(rows) == (
        "Name:        pi\nConditions:  Complete=True\n             SuccessCriteriaMet=True\nLabels:      <none>"
    )
    assert columns([["a", "1"]], ["NAME", "N"]) == "NAME    N\na       1"
