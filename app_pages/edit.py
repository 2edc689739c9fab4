"""Edit a review: change, delete or insert a word and watch the model change its mind; its confident mistakes."""

from pathlib import Path

import numpy as np
import streamlit as st

from app import charts, frames, html, inputs, run_picker, state, texts, widgets
from app.edit_session import MAX_VERSIONS, EditSession
from sentiment_core import counterfactual as cf
from sentiment_core.data import DataError
from sentiment_core.text import NoWordsError

EDITOR, MISTAKES = "Edit a review", "Confident mistakes"
SESSION, ERROR = "edit_session", "edit_error"  # st.session_state: the EditSession, an edit's refusal
TOP = 20  # mistakes shown

st.title("Edit a review")
st.markdown("Change, delete or insert a word and see at once how the model's score and its reading of every "
            "word move. Or let it show you the reviews it gets most confidently wrong.")

run, engine = run_picker.model_or_stop()
st.session_state.setdefault("lab_view", EDITOR)  # set here, not as the widget's default: a click sets it too
view = st.segmented_control("View", [EDITOR, MISTAKES], key="lab_view")


def open_review(text: str) -> None:
    """Callback: this review in the editor and in Inside (both read it from their text boxes' state)."""
    st.session_state["edit_text"] = st.session_state["inside_text"] = text
    st.session_state["lab_view"] = EDITOR


def push(session: EditSession, words: tuple[str, ...]) -> None:
    """Callback-safe: a new version, if the model can score it (else the reason is shown, nothing changes)."""
    try:
        state.score(run, engine, words)
    except NoWordsError as error:
        st.session_state[ERROR] = f"That edit was not made. {error}"
        return
    st.session_state[SESSION] = session.push(words)


def apply_edit(session: EditSession) -> None:
    action = st.session_state["edit_action"]
    position = int(st.session_state.get("edit_position") or 0)
    if action == "insert at the end":
        action, position = "insert", len(session.current)
    try:
        words = cf.apply(session.current, cf.Edit(action.split()[0], position, st.session_state.get("edit_word", "")),
                         engine.config.maxlen)
    except cf.EditError as error:
        st.session_state[ERROR] = str(error)
        return
    push(session, words)


if view == MISTAKES:
    # ---------------------------------------------------------------- confident mistakes
    st.header("The model's most confident mistakes")
    st.markdown("Every test review is scored; the wrong ones come first when the model was surest. Tags say "
                "which slices a review falls in, and the chart gives the accuracy per slice: long reviews, "
                "negations (*not*, *n't*, *never*, *no*), a turn (*but*, *however*), the star rating.")
    sources = {value: ("bundled sample: 1,000 test reviews" if value == "sample"
                       else "full IMDB: 25,000 test reviews (minutes with a large run)")
               for value, _ in widgets.data_sources() if value != "tfds"}
    data = st.radio("Test reviews", list(sources), format_func=sources.get, key="mistakes_data", horizontal=True)
    asked = st.session_state.get("mistakes_asked")
    if st.button("Find the mistakes", key="mistakes_button", type="primary"):
        asked = st.session_state["mistakes_asked"] = (str(run.path), data)
    if asked != (str(run.path), data):
        st.caption(f"Scores the test reviews with **{run.name}** (the sidebar's model).")
        st.stop()
    try:
        report = state.find_mistakes(run, engine, data)
    except DataError as error:
        st.error(str(error))
        st.stop()
    left, middle, right = st.columns(3)
    left.metric("Accuracy", f"{report.accuracy:.1%}")
    middle.metric("Mistakes", f"{len(report.mistakes):,} of {report.n:,}")
    right.metric("Unscored (no known word)", f"{report.no_words:,}")
    st.subheader("Accuracy per slice")
    st.altair_chart(charts.slices_chart(frames.slices_frame(report.slices), report.accuracy), width="stretch")
    if not any(s.slice == "rating" for s in report.slices):
        st.caption("This data source keeps no star ratings, so there is no rating slice.")
    st.subheader(f"The {min(TOP, len(report.mistakes))} most confident mistakes")
    st.dataframe(frames.mistakes_frame(report.mistakes, TOP), hide_index=True, key="mistakes_table",
                 column_config={"probability": st.column_config.ProgressColumn(
                     "probability positive", min_value=0.0, max_value=1.0, format="percent")})
    if report.mistakes:
        shown = report.mistakes[:TOP]
        state.repick("mistakes_pick", tuple(m.text for m in shown), 0)
        pick = st.selectbox("Review", range(len(shown)), key="mistakes_pick",
                            format_func=lambda k: f"{k + 1}. {texts.short(shown[k].text, 80)}")
        chosen = shown[pick].text
        edit_col, inside_col = st.columns(2)
        edit_col.button("Edit it", key="mistakes_edit", on_click=open_review, args=(chosen,),
                        icon=":material/edit:", help="Opens it in the editor above, and in Inside.")
        if inside_col.button("Read it in Inside", key="mistakes_inside", on_click=open_review, args=(chosen,),
                             icon=":material/neurology:"):
            st.switch_page("app_pages/inside.py")
    st.stop()

# -------------------------------------------------------------------- the editor
st.session_state.setdefault("edit_text", texts.EXAMPLE_REVIEW)
text = st.text_area("Review", key="edit_text", height=110,
                    help="Edits start from this text; changing it starts over.")
try:
    batch = inputs.prepare_reviews([text], engine.config.truncating)
    words = cf.words_of(engine, batch.texts[0])
    original = state.score(run, engine, words)
except (inputs.InputError, NoWordsError) as error:
    st.info(str(error))
    st.stop()

session: EditSession | None = st.session_state.get(SESSION)
if session is None or session.source != text:
    session = st.session_state[SESSION] = EditSession(text, str(run.path), (words,))
    st.session_state.pop(ERROR, None)
elif session.original != words:  # another model reads the same text as other words: start over
    session = st.session_state[SESSION] = EditSession(text, str(run.path), (words,))
    st.info(f"The model changed to **{run.name}**, which reads this review differently: the edits start over.")
if session.run != str(run.path):
    if not Path(session.run).exists():
        st.warning(f"The run these edits were first scored with ({Path(session.run).name}) has been deleted. "
                   f"The scores below are now **{run.name}**'s.")
    else:
        st.info(f"The scores below are **{run.name}**'s; these edits began with {Path(session.run).name}.")

try:
    edited = state.score(run, engine, session.current)
except NoWordsError as error:  # cannot happen for a pushed version, but a model switch may change what it knows
    st.warning(f"{error} Undo the last edit or start over.")
    edited = original
comparison = cf.compare(original, edited)

st.subheader("Your edit")
if (error := st.session_state.pop(ERROR, None)) is not None:
    st.warning(error)
word_col, action_col, new_col = st.columns([3, 2, 3])
current = session.current
state.repick("edit_position", current, min(int(st.session_state.get("edit_position") or 0), len(current) - 1))
word_col.selectbox("Word", range(len(current)), key="edit_position",
                   format_func=lambda i: f"{i + 1}: {current[i]}" if i < len(current) else str(i + 1))
action_col.selectbox("Action", ["change to", "delete", "insert before", "insert at the end"], key="edit_action")
new_col.text_input("New word(s)", key="edit_word", placeholder="e.g. terrible",
                   help="For change and insert. Read as the model reads text: lowercase, no punctuation.")
buttons = st.columns(4)
buttons[0].button("Apply", key="edit_apply", type="primary", on_click=apply_edit, args=(session,))
buttons[1].button("Undo", key="edit_undo", disabled=len(session.versions) == 1,
                  on_click=lambda: st.session_state.update({SESSION: session.undo()}))
buttons[2].button("Start over", key="edit_reset", disabled=len(session.versions) == 1,
                  on_click=lambda: st.session_state.update({SESSION: session.reset()}))
buttons[3].caption(f"{session.edits} edit(s); undo goes back {MAX_VERSIONS - 1} at most.")

# -------------------------------------------------------------------- side by side
before, after = st.columns(2)
with before:
    st.metric("Original", f"{original.probability:.1%} positive", texts.label(original.probability),
              delta_color="off")
    st.markdown(html.attribution_html(original.tokens, original.attributions), unsafe_allow_html=True)
    gone = [original.words[i] for i, j in comparison.pairs if j is None]
    if gone:
        st.markdown("Deleted: " + html.struck_words(gone), unsafe_allow_html=True)
with after:
    st.metric("Edited", f"{edited.probability:.1%} positive", f"{comparison.shift:+.1%}")
    changes = comparison.attribution_changes()
    notes = {j: "edited" if np.isnan(c) else f"moved {c:+.3f}" for j, c in enumerate(changes)}
    st.markdown(html.attribution_html(edited.tokens, edited.attributions, comparison.edited_positions(), notes),
                unsafe_allow_html=True)
if comparison.flipped:
    st.success(f"The label flipped: {texts.label(original.probability)} → {texts.label(edited.probability)}.")
st.markdown(html.LEGEND_HTML + html.EDIT_LEGEND_HTML, unsafe_allow_html=True)
if len(session.versions) > 1:
    kept = [(i, j) for i, j in comparison.pairs if i is not None and j is not None]
    moved = frames.attribution_changes_frame([edited.words[j] for _, j in kept],
                                             [original.attributions[i] for i, _ in kept],
                                             [edited.attributions[j] for _, j in kept])
    st.caption("The words whose attribution the edit moved most (the same word, before and after):")
    st.dataframe(moved, hide_index=True, key="edit_moved")

# -------------------------------------------------------------------- suggestions
st.subheader("Suggestions")
st.markdown("Ask for the edits that change the model's mind: the fewest deletions that flip its label "
            f"(greedy: words go in the order of their attribution; at most {cf.FLIP_SECONDS:g} s of search), "
            "or the swaps of one word for its antonym or negation that move the score most.")
flip_col, swap_col = st.columns(2)
if flip_col.button("Fewest deletions that flip it", key="edit_flip"):
    st.session_state["edit_asked"] = ("flip", session.current)
if swap_col.button("Antonym and negation swaps", key="edit_swaps"):
    st.session_state["edit_asked"] = ("swaps", session.current)
asked = st.session_state.get("edit_asked")
if asked and asked[1] == session.current:
    if asked[0] == "flip":
        search = state.flip(run, engine, session.current)
        if search.flip is None:
            st.info(f"No flip: {search.note}.")
        else:
            gone = [session.current[i] for i in search.flip.deleted]
            st.markdown(f"**{search.note}** ({search.seconds:.1f} s): without "
                        + html.struck_words(gone) + f", the model says {search.flip.probability:.1%} positive.",
                        unsafe_allow_html=True)
            st.button("Apply these deletions", key="edit_apply_flip", on_click=push,
                      args=(session, search.flip.words))
    else:
        found = state.swaps(run, engine, session.current)
        if not found:
            st.info("No word of this review is in the list of antonyms and negations the model knows.")
        for k, swap in enumerate(found):
            cols = st.columns([5, 1])
            cols[0].markdown(f"word {swap.position + 1}: *{swap.word}* → *{swap.replacement}*: "
                             f"{swap.probability:.1%} positive ({swap.shift:+.1%})")
            swapped = session.current[: swap.position] + (swap.replacement,) + session.current[swap.position + 1 :]
            cols[1].button("Apply", key=f"edit_apply_swap_{k}", on_click=push, args=(session, swapped))

st.caption(f"Scores of **{run.name}**, the review as it reads it (lowercase, no punctuation, at most "
           f"{engine.config.maxlen} words). Attributions as on Predict: each word hidden in turn.")
