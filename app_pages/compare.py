"""Compare: several runs side by side — learning curves, settings and test scores, the same review."""

import pandas as pd
import streamlit as st

from app import charts, frames, inputs, run_picker, state, texts

st.title("Compare runs")
st.markdown("Pick two or more runs to see how their settings changed learning and the final test score.")

if not run_picker.usable_runs(state.list_runs()):
    st.warning("There are no runs to compare yet.")
    st.page_link("app_pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()
loaded = run_picker.pick_runs("compare_runs", [run_picker.current_model()], at_least=3)
if not loaded:
    st.info("Pick at least one run.")
    st.stop()
chosen = [run for run, _ in loaded]

st.header("Learning curves")
st.markdown("Validation curves, one colour per run. A validation loss that turns back up while accuracy "
            "stalls is overfitting: the run memorises its training reviews.")
history = frames.history_frame(chosen)
if history.empty:
    st.info("These runs recorded no epochs.")
else:
    left, right = st.columns(2)
    left.altair_chart(charts.compare_epochs_chart(history, "accuracy"), width="stretch")
    right.altair_chart(charts.compare_epochs_chart(history, "loss"), width="stretch")

st.header("Settings and test scores")
table = frames.compare_frame(chosen)
if st.toggle("Only rows that differ", key="compare_diff", value=len(chosen) > 1):
    shown = frames.differing_rows(table)
else:
    shown = table
st.dataframe(shown, key="compare_table")
st.caption("Test scores come from the test reviews, used once after training. Runs trained on the bundled "
           "sample were tested on 1,000 reviews, full-IMDB runs on 25,000, so compare like with like.")

st.header("Can you trust its probabilities?")
st.markdown("Each run's test reviews, grouped by the probability of *positive* it gave them (10 bins), against "
            "the share of them that really are positive. On the dashed diagonal, a review scored 70% positive is "
            "positive 70% of the time. Below it the model is too sure of *positive*, above it too sure of "
            "*negative*. The ECE (expected calibration error) is the average distance to the diagonal, weighted "
            "by the size of the points. Each run's probabilities are divided, on the logit scale, by a "
            "temperature fitted on its validation reviews after training (never on test).")
reliability = frames.reliability_frame(chosen)
if reliability.empty:
    st.info("These runs were saved before calibration was measured. `python -m sentiment_core calibrate "
            "--model RUN` measures and stores it.")
else:
    st.altair_chart(charts.reliability_chart(reliability), width="stretch")
    missing = [run.name for run in chosen if not run.metrics.get("reliability")]
    if missing:
        st.caption(f"No reliability table for {', '.join(missing)} (saved before calibration was measured).")

st.header("The same review, every model")
text = st.text_input("Review", value=texts.EXAMPLE_REVIEW, key="compare_text")
try:
    batch = inputs.prepare_reviews([text])
except inputs.InputError as error:
    st.info(str(error))
else:
    rows = []
    for run, engine in loaded:
        p = float(engine.predict(batch.texts)[0])
        rows.append({"run": run_picker.run_label({"name": run.name, "shipped": run.shipped}), "probability": p,
                     "label": texts.label(p)})
    unscored = [row["run"] for row in rows if row["label"] == texts.NO_WORDS]
    if unscored:
        st.info(f"Not scored by {', '.join(unscored)}: the review holds no word in "
                f"{'its' if len(unscored) == 1 else 'their'} vocabulary (or no word at all). Type a few words.")
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="compare_scores",
                 column_config={"probability": st.column_config.ProgressColumn(
                     "probability positive", min_value=0.0, max_value=1.0, format="percent")})
