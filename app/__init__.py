"""What only the Streamlit app uses: shared state, run pickers, widgets, data frames, charts, HTML and texts.

The engine (sentiment_core) serves the command line and notebooks too and imports none of this;
the pages in app_pages/ are thin scripts over both.
"""
