"""The shared page blocks that decide what a page's first paint costs: tables, lazy details, launcher flags."""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import widgets
from dashboard.__main__ import streamlit_argv
from tests.dashboard_fixtures import open_details, tables


def _table_page() -> None:
    import numpy as np
    import pandas as pd

    from dashboard import widgets

    frame = pd.DataFrame({"image": [f"img{i}" for i in range(40)], "psnr": np.arange(40) / 4.0})
    frame.loc[3, "psnr"] = None
    widgets.table(frame, "per image", key="t")
    widgets.table(frame.head(5), "short", key="s")


def test_a_long_table_shows_a_preview_and_all_rows_on_demand() -> None:
    at = AppTest.from_function(_table_page).run()
    assert not at.exception
    preview, short = tables(at)
    assert len(preview.value) == widgets.PREVIEW_ROWS
    assert len(short.value) == 5
    assert list(preview.value["image"]) == [f"img{i}" for i in range(widgets.PREVIEW_ROWS)]  # the first rows
    assert preview.text["psnr"][3] == widgets.EMPTY  # an empty cell reads "—"; its value stays empty
    assert pd.isna(preview.value["psnr"][3])
    assert [t.key for t in at.toggle] == ["t-all"]  # a short table has nothing more to show
    labels = [button.proto.label for button in at.get("download_button")]
    assert labels == ["Download per image, all 40 rows (CSV)", "Download short (CSV)"]  # the CSV has them all
    at.toggle(key="t-all").set_value(True).run()
    assert len(tables(at)[0].value) == 40
    assert at.get("download_button")[0].proto.label == "Download per image (CSV)"


def _details_page() -> None:
    import pandas as pd
    import streamlit as st

    from dashboard import widgets

    with widgets.details("More", key="more") as opened:
        st.caption(f"opened={opened}")
        if opened:
            widgets.table(pd.DataFrame({"a": [1, 2]}), "more")


def test_details_send_their_content_only_when_open() -> None:
    at = AppTest.from_function(_details_page).run()
    assert not at.exception
    assert len(tables(at)) == 0
    assert at.caption[0].value == "opened=False"
    open_details(at, "more")
    assert list(tables(at)[0].value["a"]) == [1, 2]
    assert at.caption[0].value == "opened=True"


def test_the_launcher_keeps_work_off_the_visits_path() -> None:
    argv = streamlit_argv()
    assert "--server.fileWatcherType=none" in argv  # no walk over every imported module after each run
    assert "--runner.postScriptGC=false" in argv  # the housekeeping thread collects instead


def _linked_table_page() -> None:
    import pandas as pd

    from dashboard import widgets

    frame = pd.DataFrame(
        {
            "compare": ["./compare?image=camera", None, "https://elsewhere.example/x"],
            "method": ["<b>a</b>", "b", "c"],
        }
    )
    widgets.table(frame, "linked", links={"compare": "open"})


def test_a_static_table_escapes_text_and_links_only_relative_urls() -> None:
    at = AppTest.from_function(_linked_table_page).run()
    (shown,) = tables(at)
    assert list(shown.text["method"]) == ["<b>a</b>", "b", "c"]  # shown as text, not markup
    assert list(shown.text["compare"]) == ["./compare?image=camera", "—", "—"]  # no link out of the app
    body = str(at.get("html")[0].proto.body)
    assert '<a href="./compare?image=camera" target="_self">open</a>' in body
    assert "elsewhere.example" not in body


def _first_screen_page() -> None:
    import streamlit as st

    from dashboard import widgets

    st.caption("first screen")
    widgets.let_the_first_screen_paint()


def test_the_first_screen_pause_is_once_per_session(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(widgets, "_pause", pauses.append)
    at = AppTest.from_function(_first_screen_page).run()
    assert not at.exception
    at.run()  # a rerun: the browser already has the chart code
    assert pauses == [widgets.FIRST_SCREEN_PAUSE_S]
