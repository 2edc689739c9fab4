"""Altair charts of the app, built from the data frames of app/frames.py and app/progress.py. No Streamlit here.

Charts have no fixed width: Streamlit stretches them to the column, so they fit a
projector and a phone alike.
"""

from __future__ import annotations

from functools import cache

import altair as alt
import pandas as pd
import pyarrow as pa

SPLIT_COLORS = alt.Scale(domain=["train", "validation"], range=["#4c78a8", "#f58518"])
RUN_COLORS = alt.Scale(scheme="tableau10")  # clearly different hues; the theme's default has two similar blues
RUN_LEGEND = alt.Legend(orient="bottom", columns=2, labelLimit=260)
LABEL_COLORS = alt.Scale(domain=["negative review", "positive review"], range=["#d73027", "#1a9850"])
# Short axis titles: Vega-Lite shrinks the plot when a rotated title is longer than the chart is high.
METRIC_TITLES = {"loss": "loss", "accuracy": "accuracy"}
HINTS = {"loss": " (lower is better)", "accuracy": ""}
LIVE, MARKER = "rows", "marker"  # the dataset names of a live chart's spec


def live_spec(chart: alt.Chart) -> dict:
    """A Vega-Lite spec of a chart whose rows come later, as named datasets (see with_rows).

    Altair validates a chart against the Vega-Lite schema whenever it turns it into a spec: about a
    tenth of a second for these layered charts, measured, which a live page paid at every refresh. A
    live chart's spec is built once (the functions below cache it), and each refresh only adds its rows.
    """
    spec = chart.to_dict()
    view = spec.get("config", {}).get("view", {})
    for key in ("continuousWidth", "continuousHeight"):  # Altair's default theme; Streamlit sizes the chart
        view.pop(key, None)
    if spec.get("config") == {"view": {}}:
        del spec["config"]
    return spec


def arrow_rows(columns: dict) -> bytes:
    """Columns by name as Arrow IPC bytes, the form st.vega_lite_chart sends a named dataset in. Handed
    over as bytes, they are not converted again by Streamlit at every refresh."""
    table = pa.table(columns)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def with_rows(spec: dict, **datasets: bytes) -> dict:
    """A live chart's spec with this draw's datasets (arrow_rows), for st.vega_lite_chart. A shallow copy:
    Streamlit replaces the spec's "datasets" and never edits the rest, so the cached spec stays as built."""
    return {**spec, "datasets": {**spec.get("datasets", {}), **datasets}}


@cache
def batch_spec(metric: str, height: int = 220) -> dict:
    """One metric per batch: faint raw values and the smoothed line; rows: step, epoch, value, smoothed."""
    base = alt.Chart(alt.NamedData(name=LIVE)).encode(x=alt.X("step:Q", title="batch"))
    raw = base.mark_line(opacity=0.25, color="#4c78a8").encode(y=alt.Y("value:Q", title=METRIC_TITLES[metric]))
    smooth = base.mark_line(color="#4c78a8", strokeWidth=2.5).encode(
        y="smoothed:Q", tooltip=[alt.Tooltip("step:Q", title="batch"), "epoch:Q",
                                 alt.Tooltip("smoothed:Q", title=f"smoothed {metric}", format=".3f")])
    return live_spec(alt.layer(raw, smooth).properties(
        height=height, title=f"{metric} per batch, smoothed{HINTS[metric]}"))


@cache
def epoch_spec(metric: str, height: int = 270) -> dict:
    """Train vs validation per epoch; rows: epoch, split, value. The best epoch, when there is one, is
    marked from the MARKER rows (epoch, text); with none, the marker layers draw nothing."""
    base = alt.Chart(alt.NamedData(name=LIVE)).encode(
        x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(format="d", tickMinStep=1)),
        y=alt.Y("value:Q", title=METRIC_TITLES[metric], scale=alt.Scale(zero=False)),
        color=alt.Color("split:N", scale=SPLIT_COLORS, title=None, legend=alt.Legend(orient="bottom")),
        tooltip=["split:N", "epoch:Q", alt.Tooltip("value:Q", format=".4f")])
    marker = alt.Chart(alt.NamedData(name=MARKER))
    layers = [base.mark_line(), base.mark_point(filled=True, size=60),
              marker.mark_rule(strokeDash=[5, 4], color="gray").encode(x="epoch:Q"),
              marker.mark_text(align="left", dx=4, dy=-6, color="gray").encode(
                  x="epoch:Q", y=alt.value(8), text="text:N")]
    return live_spec(alt.layer(*layers).properties(
        height=height, title=f"{metric} per epoch: train vs validation{HINTS[metric]}"))


def marker_rows(best_epoch: int | None, note: str = "") -> dict:
    """The best epoch's marker for epoch_spec: one row, or none (columns, as arrow_rows takes them)."""
    return {"epoch": pa.array([best_epoch] if best_epoch else [], pa.int64()),
            "text": pa.array([note or f"best epoch {best_epoch}"] if best_epoch else [], pa.string())}


def confusion_chart(frame: pd.DataFrame, height: int = 220) -> alt.Chart:
    base = alt.Chart(frame).encode(
        x=alt.X("predicted:N", title="predicted", sort=["negative", "positive"]),
        y=alt.Y("actual:N", title="actual", sort=["negative", "positive"]))
    cells = base.mark_rect().encode(color=alt.Color("share:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]),
                                                    legend=None),
                                    tooltip=["actual:N", "predicted:N", "count:Q",
                                             alt.Tooltip("share:Q", format=".1%", title="share of actual")])
    text = base.mark_text(fontSize=16).encode(
        text=alt.Text("count:Q", format=","),
        color=alt.condition("datum.share > 0.5", alt.value("white"), alt.value("black")))
    return alt.layer(cells, text).properties(height=height, title="confusion matrix (test reviews)")


def as_it_reads_chart(frame: pd.DataFrame, height: int = 260) -> alt.Chart:
    base = alt.Chart(frame).encode(
        x=alt.X("position:Q", title="word position", scale=alt.Scale(nice=False)),
        tooltip=["position:Q", "word:N", alt.Tooltip("probability:Q", format=".1%")])
    line = base.mark_line(color="#888").encode(y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1]),
                                                       title="probability positive"))
    points = base.mark_circle(size=50).encode(
        y="probability:Q",
        color=alt.Color("probability:Q", scale=alt.Scale(scheme="redyellowgreen", domain=[0, 1]), legend=None))
    rule = alt.Chart(pd.DataFrame({"y": [0.5]})).mark_rule(strokeDash=[4, 4], color="gray").encode(y="y:Q")
    return alt.layer(rule, line, points).properties(height=height)


def connectivity_chart(frame: pd.DataFrame, height: int = 200) -> alt.Chart:
    """Bars per word position (the x axis of as_it_reads_chart): ‖∂ score / ∂ word‖; rows: reading_frame's
    plus connectivity."""
    return alt.Chart(frame).mark_bar(color="#4c78a8").encode(
        x=alt.X("position:Q", title="word position", scale=alt.Scale(nice=False)),
        y=alt.Y("connectivity:Q", title="‖∂ logit / ∂ word‖"),
        tooltip=["position:Q", "word:N", alt.Tooltip("connectivity:Q", format=".3g")],
    ).properties(height=height)


def forgetting_chart(frame: pd.DataFrame, height: int = 320) -> alt.Chart:
    """forgetting_frame: one line per run, relative connectivity by distance from the end, log scale."""
    return alt.Chart(frame).mark_line(point=alt.OverlayMarkDef(size=12)).encode(
        x=alt.X("distance:Q", title="distance from the last word read (1 = the last word)"),
        y=alt.Y("relative:Q", scale=alt.Scale(type="log"), title="connectivity ÷ the last word's, log scale"),
        color=alt.Color("run:N", title=None, scale=RUN_COLORS, legend=RUN_LEGEND),
        tooltip=["run:N", "distance:Q", alt.Tooltip("relative:Q", format=".3g"),
                 alt.Tooltip("connectivity:Q", format=".3g", title="mean ‖∂ logit / ∂ word‖")],
    ).properties(height=height)


def heatmap(frame: pd.DataFrame, value_title: str, bounded: tuple[float, float] | None = None,
            scheme: str = "redblue", height: int | None = None) -> alt.Chart:
    """Units (rows) x words (columns); words are labelled '3 movie' so repeats stay apart."""
    order = frame.drop_duplicates("position").sort_values("position")["label"].tolist()
    units = int(frame["unit"].max()) + 1 if len(frame) else 1
    if scheme == "redblue" and bounded is None:
        peak = float(frame["value"].abs().max()) if len(frame) else 1.0
        bounded = (-max(peak, 1e-6), max(peak, 1e-6))
    scale = alt.Scale(scheme=scheme, domain=list(bounded) if bounded else alt.Undefined,
                      reverse=scheme == "redblue")
    chart = alt.Chart(frame).mark_rect().encode(
        x=alt.X("label:N", sort=order, title="word (in reading order)",
                axis=alt.Axis(labelAngle=-90, labelOverlap="greedy", labelLimit=90)),
        y=alt.Y("unit:O", title="unit", axis=alt.Axis(labelOverlap="greedy")),
        color=alt.Color("value:Q", scale=scale, title=value_title),
        tooltip=["position:Q", "word:N", "unit:O", alt.Tooltip("value:Q", format=".3f")])
    # The height includes the rotated word labels (about 100 px), so the cells keep a readable size.
    return chart.properties(height=height or min(max(14 * units, 120), 520) + 110)


def trajectory_chart(reference: pd.DataFrame, path: pd.DataFrame, x_title: str = "component 1",
                     y_title: str = "component 2", height: int = 420) -> alt.Chart:
    cloud = alt.Chart(reference).mark_circle(size=28, opacity=0.35).encode(
        x=alt.X("x:Q", title=x_title), y=alt.Y("y:Q", title=y_title),
        color=alt.Color("review:N", scale=LABEL_COLORS, title="where reviews end",
                        legend=alt.Legend(orient="bottom")))
    line = alt.Chart(path).mark_line(color="black", strokeWidth=1.5, opacity=0.8).encode(
        x="x:Q", y="y:Q", order="position:Q")
    dots = alt.Chart(path).mark_circle(color="black", size=45).encode(
        x="x:Q", y="y:Q", tooltip=["position:Q", "word:N"])
    ends = path.iloc[[0, -1]].assign(tag=["start", "end"]) if len(path) else path.assign(tag=[])
    tags = alt.Chart(ends).mark_text(dx=8, dy=-8, fontWeight="bold", align="left").encode(
        x="x:Q", y="y:Q", text="tag:N")
    return alt.layer(cloud, line, dots, tags).properties(height=height)


def unit_chart(frame: pd.DataFrame, height: int = 300) -> alt.Chart:
    order = frame["label"].tolist()
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("label:N", sort=order, title="word (in reading order)",
                axis=alt.Axis(labelAngle=-90, labelOverlap="greedy", labelLimit=90)),
        y=alt.Y("activation:Q", title="activation"),
        color=alt.condition("datum.activation >= 0", alt.value("#1a9850"), alt.value("#d73027")),
        tooltip=["position:Q", "word:N", alt.Tooltip("activation:Q", format=".3f")],
    ).properties(height=height)


def grad_norm_chart(frame: pd.DataFrame, height: int = 360) -> alt.Chart:
    return alt.Chart(frame).mark_line().encode(
        x=alt.X("step:Q", title="time step t (word position in the padded review)"),
        y=alt.Y("norm:Q", scale=alt.Scale(type="log"), title="‖∂loss/∂hₜ‖, log scale"),
        color=alt.Color("run:N", title=None, scale=RUN_COLORS, legend=RUN_LEGEND),
        detail="epoch:O",
        opacity=alt.Opacity("epoch:Q", legend=None, scale=alt.Scale(range=[0.35, 1.0])),
        tooltip=["run:N", "epoch:Q", "step:Q", alt.Tooltip("norm:Q", format=".2e")],
    ).properties(height=height)


def compare_epochs_chart(frame: pd.DataFrame, metric: str, height: int = 320) -> alt.Chart:
    data = frame[(frame["metric"] == metric) & (frame["split"] == "validation")]
    base = alt.Chart(data).encode(
        x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(format="d", tickMinStep=1)),
        y=alt.Y("value:Q", title=METRIC_TITLES[metric], scale=alt.Scale(zero=False)),
        color=alt.Color("run:N", title=None, scale=RUN_COLORS, legend=RUN_LEGEND),
        tooltip=["run:N", "epoch:Q", alt.Tooltip("value:Q", format=".4f")])
    return alt.layer(base.mark_line(), base.mark_point(filled=True)).properties(
        height=height, title=f"validation {metric}{HINTS[metric]}")


def reliability_chart(frame: pd.DataFrame, height: int = 360) -> alt.Chart:
    """Share of positive reviews against the probability said, per bin: on the diagonal, "70%" is right
    70% of the time; below it the model is too sure of "positive", above it too sure of "negative"."""
    diagonal = alt.Chart(pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0]})).mark_line(
        strokeDash=[4, 4], color="gray").encode(x="x:Q", y="y:Q")
    base = alt.Chart(frame).encode(
        x=alt.X("mean probability:Q", title="probability positive said (bin mean)", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("share positive:Q", title="share of reviews that are positive", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("run:N", title=None, scale=RUN_COLORS, legend=RUN_LEGEND),
        tooltip=["run:N", "bin:N", alt.Tooltip("mean probability:Q", format=".3f"),
                 alt.Tooltip("share positive:Q", format=".3f"), alt.Tooltip("reviews:Q", format=","),
                 alt.Tooltip("ece:Q", format=".4f", title="ECE")])
    points = base.mark_point(filled=True).encode(
        size=alt.Size("reviews:Q", legend=None, scale=alt.Scale(range=[20, 300])))
    return alt.layer(diagonal, base.mark_line(), points).properties(height=height)


LOG_AXES = {"parameters", "Learning rate", "Vocabulary size"}  # spread over orders of magnitude


def class_chart(frame: pd.DataFrame, x: str, height: int = 360) -> alt.Chart:
    """Each run's test accuracy against one column of the class board (a hyperparameter, its size or its
    training time): one dot per run, coloured by cell; the shipped runs are diamonds, as references."""
    data = frame.dropna(subset=["test accuracy", x]).copy()
    data["kind"] = data["student"].where(data["student"] == "reference (shipped)", "class")
    numeric = pd.api.types.is_numeric_dtype(data[x]) and not pd.api.types.is_bool_dtype(data[x])
    if numeric:
        log = x in LOG_AXES and (data[x] > 0).all()
        axis = alt.X(field=x, type="quantitative", title=x, scale=alt.Scale(type="log" if log else "linear",
                                                                             zero=False))
    else:
        data[x] = data[x].astype(str)
        axis = alt.X(field=x, type="nominal", title=x, axis=alt.Axis(labelAngle=0))
    return alt.Chart(data).mark_point(filled=True, size=70, opacity=0.8).encode(
        x=axis,
        y=alt.Y("test accuracy:Q", title="test accuracy", axis=alt.Axis(format="%"), scale=alt.Scale(zero=False)),
        color=alt.Color("Cell:N", scale=RUN_COLORS, legend=alt.Legend(orient="bottom")),
        shape=alt.Shape("kind:N", scale=alt.Scale(domain=["class", "reference (shipped)"],
                                                  range=["circle", "diamond"]), legend=alt.Legend(orient="bottom")),
        tooltip=["run", "student", alt.Tooltip("test accuracy:Q", format=".2%"),
                 alt.Tooltip(field=x, type="quantitative" if numeric else "nominal")],
    ).properties(height=height)


def slices_chart(frame: pd.DataFrame, overall: float, height: int = 110) -> alt.Chart:
    """Accuracy per slice (frames.slices_frame): one row of bars per kind of slice, the overall accuracy dashed."""
    base = alt.Chart().encode(
        y=alt.Y("value:N", title=None, sort=alt.EncodingSortField("order")),
        tooltip=["slice:N", "value:N", alt.Tooltip("n:Q", format=","), alt.Tooltip("accuracy:Q", format=".1%")])
    bars = base.mark_bar().encode(
        x=alt.X("accuracy:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        color=alt.Color("accuracy:Q", scale=alt.Scale(scheme="redyellowgreen", domain=[0.5, 1]), legend=None))
    labels = base.mark_text(align="left", dx=3).encode(x="accuracy:Q", text=alt.Text("accuracy:Q", format=".1%"))
    rule = base.mark_rule(strokeDash=[4, 4], color="gray").encode(x="overall:Q")
    return alt.layer(bars, labels, rule, data=frame.assign(overall=overall)).properties(height=height).facet(
        row=alt.Row("slice:N", title=None, sort=["length", "negation", "contrast", "rating"])
    ).resolve_scale(y="independent")
