"""Predict: score one review or many (typed or from a CSV) and see which words pushed the score."""

import numpy as np
import streamlit as st

from app import frames, html, inputs, run_picker, state, texts
from sentiment_core.text import NoWordsError

st.title("Predict")
st.markdown("Score reviews with the model chosen in the sidebar. One review shows which words mattered; "
            "several (one per line, or a CSV file) give a table.")

run, engine = run_picker.model_or_stop()
config = engine.config


source = st.segmented_control("Input", ["Type or paste", "Upload a CSV"], default="Type or paste",
                              key="predict_source")
reviews: list[str] | None = None
if source == "Upload a CSV":
    upload = st.file_uploader("CSV file with a `text` column (UTF-8, at most 1,000 rows)", type=["csv"],
                              key="predict_csv")
    if upload is not None:
        try:
            reviews = inputs.read_csv_reviews(upload.getvalue())
        except inputs.InputError as error:
            st.error(str(error))
else:
    many = st.toggle("Several reviews, one per line", key="predict_many")
    raw = st.text_area("Review" + ("s, one per line" if many else ""), key="predict_text", height=160,
                       placeholder="e.g. The plot was thin but the actors saved it.")
    if st.button("Predict", key="predict_button", type="primary"):
        st.session_state["predict_last"] = (raw, many)
    if st.session_state.get("predict_last") == (raw, many):  # the result stays until the text changes
        reviews = inputs.split_lines(raw, many)

if reviews is not None:
    try:
        batch = inputs.prepare_reviews(reviews, config.truncating)
    except inputs.InputError as error:
        st.warning(str(error))
        st.stop()
    for note in batch.notes:
        st.info(note)
    with st.spinner("Scoring…"):
        probabilities = engine.predict(batch.texts)
        tokens = [engine.tokens(t) for t in batch.texts]
    table = frames.predictions_frame(batch.texts, probabilities, tokens)
    unscored = int(np.isnan(probabilities).sum())

    if len(batch.texts) == 1:
        if unscored:
            st.info(str(NoWordsError(batch.texts[0], tokens[0])))
            st.stop()
        p = float(probabilities[0])
        left, right = st.columns(2)
        left.metric("Probability positive", f"{p:.1%}")
        right.metric("Label", texts.label(p))
        st.subheader("Which words pushed the score")
        st.markdown("Each word is hidden in turn (replaced by the unknown-word token) and the review is scored "
                    "again. Green words raised the probability, red words lowered it; the stronger the colour, "
                    "the bigger the change. Hover a word for the number.")
        words, deltas = state.occlusion(run, engine, batch.texts[0])
        st.markdown(html.attribution_html(words, deltas), unsafe_allow_html=True)
        st.markdown(html.LEGEND_HTML, unsafe_allow_html=True)
        st.caption(f"This is the review as the model reads it: lowercase, without punctuation, at most "
                   f"{config.maxlen} words ({'the last' if config.truncating == 'pre' else 'the first'} ones "
                   f"of a longer review).")
    elif unscored:
        st.warning(f"{unscored} review(s) hold no word the model knows (another language, code or junk?), "
                   "so they were not scored.")
    st.dataframe(table, hide_index=True, key="predict_table",
                 column_config={"probability": st.column_config.ProgressColumn(
                     "probability positive", min_value=0.0, max_value=1.0, format="percent")})
    st.download_button("Download the results (CSV)", table.to_csv(index=False).encode("utf-8"),
                       file_name="predictions.csv", mime="text/csv", key="predict_download", on_click="ignore")
    if len(batch.texts) > 1 and unscored < len(batch.texts):
        scored = probabilities[~np.isnan(probabilities)]
        st.caption(f"{len(scored)} reviews scored, {float((scored >= 0.5).mean()):.0%} positive.")
