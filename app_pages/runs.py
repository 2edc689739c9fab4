"""Runs: every trained model on this server — details, download, import, delete."""

from pathlib import Path

import streamlit as st

from app import frames, inputs, run_picker, state
from sentiment_core import export, runs
from sentiment_core.people import NotAllowed, owner_tag

st.title("Runs")
st.markdown("Every trained model on this server. **Shipped** runs come with the app and cannot be deleted; "
            "**yours** are the ones trained or imported here. A run downloads as a zip that another copy of "
            "the lab can import.")

rows = state.list_runs()
if "runs_message" in st.session_state:
    st.success(st.session_state.pop("runs_message"))
if rows:
    st.dataframe(frames.runs_frame(rows), hide_index=True, key="runs_table",
                 column_config={"test accuracy": st.column_config.NumberColumn(format="percent")})
else:
    st.info("No runs yet.")
    st.page_link("app_pages/train.py", label="Train one", icon=":material/model_training:")


@st.cache_data(max_entries=4, show_spinner="Packing the run…")
def zipped(path: str, mtime: float) -> bytes:
    return runs.to_zip(path)


def delete(name: str, path: str) -> None:
    try:
        runs.delete_run(name, state.runs_dir(), state.actor())
    except (runs.RunError, NotAllowed) as error:
        st.session_state["runs_error"] = str(error)
    else:
        st.session_state["runs_message"] = f"Deleted {name}."
        if st.session_state.get(run_picker.MODEL_KEY) == path:
            del st.session_state[run_picker.MODEL_KEY]
    st.session_state["runs_confirm"] = False


if rows:
    st.header("One run")
    paths = [r["path"] for r in rows]
    by_path = {r["path"]: r for r in rows}
    state.keep_valid("runs_pick", paths)
    if "runs_pick" not in st.session_state and run_picker.current_model() in paths:
        st.session_state["runs_pick"] = run_picker.current_model()
    path = st.selectbox("Run", paths, key="runs_pick", format_func=lambda p: run_picker.run_label(by_path[p]))
    row = by_path[path]
    if "runs_error" in st.session_state:
        st.error(st.session_state.pop("runs_error"))
    if row.get("error"):
        st.error(f"This run is damaged and cannot be used: {row['error']}")
    else:
        try:
            st.download_button("Download as zip", data=zipped(path, state.mtime(path)),
                               file_name=f"{row['name']}.zip", mime="application/zip", key="runs_download",
                               icon=":material/download:", on_click="ignore")
        except runs.RunError as error:
            st.error(f"This run cannot be packed: {error}")
        try:
            script = export.script_for(state.load(path)[0].config, row["name"], f"{row['name']}.py")
        except export.ExportError as error:
            st.caption(f"No Python script for this run. {error}")
        except runs.RunError as error:
            st.error(f"This run cannot be exported: {error}")
        else:
            st.download_button("Download as a Python script", data=script, file_name=f"{row['name']}.py",
                               mime="text/x-python", key="runs_script", icon=":material/code:", on_click="ignore")
            st.caption(f"One file that needs only Keras 3 and NumPy: `python {row['name']}.py train --data tfds` "
                       f"trains this network on IMDB with the run's settings and seed; `python {row['name']}.py "
                       f"predict --weights {row['name']}.zip \"a review\"` scores with this run's weights (the zip "
                       "above).")
        card = Path(path) / "card.md"
        if card.is_file():
            with st.expander("Model card", expanded=False):
                st.markdown(card.read_text(encoding="utf-8", errors="replace"))
    if row.get("shipped"):
        st.caption("Shipped runs are part of the app and cannot be deleted.")
    elif not state.actor().may_act_on(tag=runs.read_student(path).get("owner")):
        st.caption("Only the student who trained or imported this run here, or the teacher (Class page), can "
                   "delete it.")
    else:
        confirm = st.checkbox(f"Yes, delete {row['name']} for good", key="runs_confirm")
        st.button("Delete this run", key="runs_delete", disabled=not confirm, on_click=delete,
                  args=(row["name"], path), icon=":material/delete:")

st.header("Import a run")
upload = st.file_uploader("A run's zip (as downloaded here)", type=["zip"], key="runs_upload")
if upload is not None:
    taken = [r["name"] for r in rows]
    suggestion = inputs.suggest_import_name(upload.name, taken)
    if st.session_state.get("runs_import_for") != upload.file_id:
        st.session_state["runs_import_for"] = upload.file_id
        st.session_state["runs_import_name"] = suggestion
    name = st.text_input("Name for the imported run", key="runs_import_name")
    if st.button("Import", key="runs_import", icon=":material/upload:"):
        try:
            imported = runs.import_zip(upload.getvalue(), (name or "").strip(), state.runs_dir(),
                                       owner_tag(state.owner()))
        except runs.RunError as error:
            st.error(f"Could not import this zip: {error}")
        else:
            st.session_state["runs_message"] = f"Imported {imported.name}; every page's model selector lists it."
            st.session_state.pop("runs_import_for", None)
            st.rerun()
