"""The Streamlit dashboard of Gradient Variance Lab.

``dashboard/app.py`` is the entry script (a table of contents over ``pages/*.py``). The modules here hold
everything a page needs that is not layout:

- :mod:`dashboard.state` -- configuration (assets root, folder roots, limits) and session-state keys;
- :mod:`dashboard.safety` -- upload checks and folder-root confinement (errors name the problem);
- :mod:`dashboard.analysis` -- pure computations over :mod:`gvcore` (maps, metrics, degradations, tiling);
- :mod:`dashboard.loaders` -- cached loaders (``st.cache_resource`` for models, ``st.cache_data`` for data);
- :mod:`dashboard.figures` -- pure Plotly figure builders, one module per kind of figure (no ``st.*``);
- :mod:`dashboard.compare_slider` -- an offline before/after slider with exact pixels.

Nothing here runs at import time, and :mod:`gvcore` never imports this package.
"""
