"""Home: what the lab is, how to use it, and a review box scored by the selected model."""

import streamlit as st

from app import inputs, run_picker, texts
from sentiment_core.text import NoWordsError

st.title("RNN Sentiment Lab")
st.markdown(
    "A recurrent neural network reads a movie review **one word at a time**, carrying a hidden state "
    "from word to word, and at the end says how positive the review is. Here you can train such networks "
    "on the IMDB reviews, score your own text, and watch what happens inside while the network reads."
)

cols = st.columns(3)
with cols[0]:
    st.page_link("app_pages/train.py", label="**Train** a model your way", icon=":material/model_training:")
    st.page_link("app_pages/predict.py", label="**Predict**: which words mattered", icon=":material/rate_review:")
with cols[1]:
    st.page_link("app_pages/inside.py", label="**Inside the RNN**: states and gates", icon=":material/neurology:")
    st.page_link("app_pages/compare.py", label="**Compare** runs side by side", icon=":material/compare_arrows:")
with cols[2]:
    st.page_link("app_pages/runs.py", label="**Runs**: download, import, delete", icon=":material/folder_zip:")
    st.page_link("app_pages/edit.py", label="**Edit a review**: change its mind", icon=":material/edit_note:")
    st.caption("Pick the model for Predict and Inside in the sidebar (☰ on a phone).")

st.subheader("Try it")
loaded = run_picker.require_model()
if loaded is not None:
    run, engine = loaded
    text = st.text_area("Write a movie review", value=texts.EXAMPLE_REVIEW, key="home_text", height=110)
    try:
        batch = inputs.prepare_reviews([text], engine.config.truncating)
        probability = engine.probability(batch.texts[0])
    except (inputs.InputError, NoWordsError) as error:
        st.info(str(error))
    else:
        verdict = texts.label(probability)
        left, right = st.columns(2)
        left.metric("Probability positive", f"{probability:.1%}")
        right.metric("Label", verdict, help="positive when the probability is at least 50%")
        st.progress(probability, text=f"{verdict} ({probability:.1%})")
        for note in batch.notes:
            st.caption(note)
    run_picker.model_caption(run)
