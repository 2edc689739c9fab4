"""RNN Sentiment Lab: `streamlit run streamlit_app.py`.

The entry point only sets up the page, the shared sidebar and the navigation; each
page lives in app_pages/, what only the app uses in app/, and every computation in sentiment_core.

The folder is deliberately not called `pages/`: Streamlit treats a `pages/` folder as
the old multipage mode until st.navigation has run once in the process, so a first
visit straight to e.g. /train?job=... after a restart (or any AppTest.switch_page)
would run that page alone, without this script's sidebar and page config.
"""

import streamlit as st

from app import run_picker

st.set_page_config(page_title="RNN Sentiment Lab", page_icon=":material/psychology:", layout="wide")

PAGES = [
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/predict.py", title="Predict", icon=":material/rate_review:"),
    st.Page("app_pages/inside.py", title="Inside the RNN", icon=":material/neurology:"),
    st.Page("app_pages/edit.py", title="Edit a review", icon=":material/edit_note:"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("app_pages/runs.py", title="Runs", icon=":material/folder_zip:"),
    st.Page("app_pages/class.py", title="Class", icon=":material/groups:"),
]

page = st.navigation(PAGES)
run_picker.sidebar()
page.run()
