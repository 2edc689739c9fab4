"""Inside the RNN: what the network computes, word by word, while it reads one review."""

import streamlit as st

from app import charts, frames, inputs, run_picker, state, texts
from sentiment_core import insights
from sentiment_core.text import NoWordsError

MAX_WORDS = 150  # words per heatmap; a longer review gets a window slider
MAX_UNITS = 128  # units per heatmap

st.title("Inside the RNN")
st.markdown("Type a review and follow the model chosen in the sidebar as it reads it, one word at a time. "
            "Every chart below comes from the same reading.")

run, engine = run_picker.model_or_stop()
config = engine.config


text = st.text_area("A review to read", value=texts.EXAMPLE_REVIEW, key="inside_text", height=110)
reading = None
try:
    batch = inputs.prepare_reviews([text], config.truncating)
    reading = state.read(run, engine, batch.texts[0])
except (inputs.InputError, NoWordsError) as error:
    st.info(str(error))
else:
    for note in batch.notes:
        st.caption(note)

if reading is not None:
    tokens = reading.tokens
    p = reading.probability
    st.markdown(f"Final score: **{p:.1%} positive** ({texts.label(p)}), after reading {len(tokens)} words"
                + (f" (it reads at most {config.maxlen})." if len(tokens) >= config.maxlen else "."))
    if config.members > 1:
        scores = ", ".join(f"{m:.1%}" for m in reading.members)
        calibrated = (f", calibrated by its temperature {engine.temperature:.2f}" if engine.temperature != 1.0
                      else "")
        st.info(f"This run is an ensemble of {config.members} networks, and its score is the mean of theirs "
                f"({scores}){calibrated}. The hidden states, gates and units below are the first network's: "
                "each member has its own, on its own axes.")

    # ------------------------------------------------------------ as it reads
    st.header("Sentiment as it reads")
    st.markdown("Each point is the score the model would give if the review stopped after that word. Watch "
                "for the words where the line jumps across the dashed 50% line: that is where the model "
                "changed its mind. Hover a point to see the word.")
    if config.bidirectional:
        st.info("This model is bidirectional: it also reads the review backwards, from the last word. So each "
                "point here re-reads the review's first words from scratch as a complete (shorter) review.")
    reading_frame = frames.reading_frame(tokens, reading.as_it_reads)
    st.altair_chart(charts.as_it_reads_chart(reading_frame), width="stretch")

    # ------------------------------------------------------------ what it forgets
    st.header("What it forgets")
    st.markdown("How much the final score still depends on each word, at the same positions as the curve above: "
                "the size of the gradient of the final score (its logit, log(p / (1 − p))) with respect to the "
                "word's embedding vector, ‖∂ logit / ∂ word‖. A tall bar is a word the verdict still hangs on. A "
                "SimpleRNN's bars shrink towards the first words: it forgets them. Gates let an LSTM or GRU keep "
                "early words tall. The curve over many reviews is at the bottom of the page.")
    _, memory = state.connectivity_of(run, engine, batch.texts[0])
    st.altair_chart(charts.connectivity_chart(reading_frame.assign(connectivity=memory)), width="stretch")
    if config.bidirectional or config.members > 1:
        st.caption(("This model also reads backwards, so its first words are read last too. " if config.bidirectional
                    else "") + ("For an ensemble, the score is the logit of the members' mean probability, and "
                                "each word's vector is its vectors in every member." if config.members > 1 else ""))

    # ------------------------------------------------------------ which words, which layer, which direction
    start = 0
    if len(tokens) > MAX_WORDS:
        start = st.slider("Show words starting at", 1, len(tokens) - MAX_WORDS + 1, 1, key="inside_window",
                          help=f"The heatmaps show {MAX_WORDS} words at a time.") - 1
    window = slice(start, start + MAX_WORDS)
    picks = st.columns(2)
    layer = 0
    if config.layers > 1:
        state.keep_valid("inside_layer", range(config.layers))
        layer = picks[0].selectbox("Layer", range(config.layers), index=config.layers - 1, key="inside_layer",
                                   format_func=lambda i: f"layer {i + 1}")
    direction = "forward"
    if config.bidirectional:
        direction = picks[1].segmented_control("Direction", ["forward", "backward"], default="forward",
                                               key="inside_direction") or "forward"
    traced = reading.layers[layer][direction]

    # ------------------------------------------------------------ hidden state
    st.header("Hidden state")
    st.markdown("Rows are the hidden units, columns the words in reading order; colour is the unit's value "
                "after that word (−1 to 1). This vector is all the model remembers of the review so far. Look "
                "for rows that switch colour at strongly positive or negative words, and for rows that hold "
                "their colour over many words: that is memory.")
    if traced["h"].shape[1] > MAX_UNITS:
        st.caption(f"Showing the first {MAX_UNITS} of {traced['h'].shape[1]} units.")
    st.altair_chart(charts.heatmap(frames.state_frame(tokens[window], traced["h"][window], MAX_UNITS), "h",
                                   bounded=(-1, 1)), width="stretch")

    # ------------------------------------------------------------ trajectory
    st.header("The path of the hidden state")
    if not run.insights:
        st.info("This run has no saved reference reviews (insights.npz), so there is no map to draw on.")
    else:
        st.markdown("The hidden state has many dimensions; here it is flattened to the two directions along "
                    "which it varies most. Dots are where 400 validation reviews ended up (red negative, "
                    "green positive); the black line is this review's path, word by word. A good model walks "
                    "towards one of the two clouds and stays there once it has made up its mind.")
        explained = run.insights.get("pca_explained", [float("nan")] * 2)
        path = insights.project(run.insights, reading.layers[-1]["forward"]["h"])
        st.altair_chart(charts.trajectory_chart(frames.reference_frame(run.insights),
                                                frames.trajectory_frame(tokens, path),
                                                f"component 1 ({explained[0]:.0%} of variance)",
                                                f"component 2 ({explained[1]:.0%} of variance)"), width="stretch")
        if config.layers > 1 or config.bidirectional:
            st.caption("The path is the top layer's forward state.")

    # ------------------------------------------------------------ gates
    st.header("Gates")
    if config.cell == "simple_rnn":
        st.info("A SimpleRNN has no gates: every step overwrites the state through one tanh. That is why it "
                "forgets quickly; train an LSTM or GRU to see gates here.")
    else:
        if config.cell == "lstm":
            st.markdown("An LSTM decides per unit and per word how much of the new word to write (**input** "
                        "gate), how much of its memory to keep (**forget** gate, near 1 = remember) and how "
                        "much of the memory to show (**output** gate). The **cell state** is the memory itself. "
                        "Look for words where the forget gate drops: the model wipes that unit clean.")
            names = {"input": "input gate", "forget": "forget gate", "output": "output gate", "c": "cell state"}
        else:
            st.markdown("A GRU has an **update** gate (near 1 = keep the old state, near 0 = take the new "
                        "word) and a **reset** gate (how much of the old state shapes the new candidate). Look "
                        "for words where the update gate drops to dark: those words rewrite the memory.")
            names = {"update": "update gate", "reset": "reset gate"}
        for tab, (name, title) in zip(st.tabs(list(names.values())), names.items(), strict=True):
            with tab:
                frame = frames.state_frame(tokens[window], traced[name][window], MAX_UNITS)
                if name == "c":
                    st.altair_chart(charts.heatmap(frame, title), width="stretch")
                else:
                    st.altair_chart(charts.heatmap(frame, title, bounded=(0, 1), scheme="viridis"), width="stretch")

    # ------------------------------------------------------------ units that track the label
    st.header("Units that track sentiment")
    if not run.insights or "unit_correlation" not in run.insights:
        st.info("This run has no saved unit statistics (insights.npz).")
    else:
        st.markdown("Across 400 validation reviews, these are the units whose value (the one the output "
                    "layer reads) correlates most with the true label. A positive correlation means the unit "
                    "is high for positive reviews. Pick one to see it word by word: a 'sentiment neuron' "
                    "moves at opinion words and ignores the rest.")
        top = insights.label_units(run.insights, k=8)
        units = config.units
        table = [{"unit": texts.unit_name(u["unit"], units, config.bidirectional),
                  "correlation with positive": round(u["correlation"], 3)} for u in top]
        left, right = st.columns([1, 2])
        left.dataframe(table, hide_index=True, key="inside_units_table")
        with right:
            state.keep_valid("inside_unit", [u["unit"] for u in top])
            unit = st.selectbox("Unit", [u["unit"] for u in top], key="inside_unit",
                                format_func=lambda u: texts.unit_name(u, units, config.bidirectional))
            frame = frames.unit_frame(tokens, reading.layers, units, unit)
            st.altair_chart(charts.unit_chart(frame.iloc[window]), width="stretch")
        if config.pooling != "last":
            st.caption(f"With {config.pooling} pooling the output layer reads the {config.pooling} of this unit "
                       "over all words; the bars show its value at each word.")

# ---------------------------------------------------------------- gradients through time
st.header("Gradients through time")
st.markdown("While training, the lab measured how strongly the loss reacts to the hidden state at each time "
            "step, ‖∂loss/∂hₜ‖, on a fixed batch of long validation reviews. If the line falls steeply towards "
            "the first steps (note the log scale), early words barely get any learning signal: that is the "
            "vanishing gradient, which gates (LSTM, GRU) were invented to fix. Compare a SimpleRNN with a GRU.")
picked = run_picker.pick_runs("inside_grad_runs", [str(run.path)])
which = st.segmented_control("Epochs", ["last", "first", "all"], default="last", key="inside_grad_epochs",
                             format_func={"last": "after the last epoch", "first": "before training",
                                          "all": "every epoch (darker = later)"}.get) or "last"
histories = {run_picker.run_label({"name": r.name, "shipped": r.shipped}): r.history for r, _ in picked}
frame = frames.grad_norm_frame(histories, which)
if frame.empty:
    st.info("No gradient norms were recorded for the chosen runs (they are measured once per epoch).")
else:
    st.altair_chart(charts.grad_norm_chart(frame), width="stretch")
    st.caption("Step 1 is the first position of the padded review, the last step is the last word read.")

# ---------------------------------------------------------------- what it forgets, over many reviews
st.header("What it forgets, over many reviews")
st.markdown(f"The connectivity above, averaged over up to {state.FORGETTING_REVIEWS} of the bundled sample's test "
            "reviews, by distance from the last word read (1 = the last word), relative to the last word's. Each "
            f"review is at least as long as the distances shown ({state.FORGETTING_DISTANCES} words, or the "
            "run's max length if shorter), so every point averages the same reviews. A line that drops fast is a "
            "model whose verdict hangs on the last words only; a flat line keeps the whole review in mind.")
curves, notes = {}, []
for picked_run, picked_engine in run_picker.pick_runs("inside_forget_runs", [str(run.path)], at_least=2):
    name = run_picker.run_label({"name": picked_run.name, "shipped": picked_run.shipped})
    try:
        curves[name], count = state.forgetting(picked_run, picked_engine)
    except ValueError as error:
        st.warning(f"{name}: {error}")
    else:
        notes.append(f"{name}: {count} reviews, distances 1-{len(curves[name])}")
forgetting = frames.forgetting_frame(curves)
if forgetting.empty:
    st.info("Pick a run to draw its curve.")
else:
    st.altair_chart(charts.forgetting_chart(forgetting), width="stretch")
    st.caption("; ".join(notes) + ". Hover a point for the raw mean ‖∂ logit / ∂ word‖.")
