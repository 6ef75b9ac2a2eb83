"""Pure Plotly figure builders, one module per kind of figure.

Data in, ``go.Figure`` out; they never call ``st.*`` and never mutate inputs.

- :mod:`dashboard.figures.axes` -- the palette, image-like axes, power-of-ten log ticks, :func:`value_axis_range`,
  the export config and wrapped subplot titles (shared by the others);
- :mod:`dashboard.figures.images` -- images and zoom crops side by side (lossless PNG, exact pixels);
- :mod:`dashboard.figures.maps` -- heatmaps: gradient and patch-variance maps, variance-deficit maps;
- :mod:`dashboard.figures.histograms` -- histograms of log10 patch variances;
- :mod:`dashboard.figures.bars` -- bar charts of variances, metrics and the share of HR's variance kept;
- :mod:`dashboard.figures.curves` -- training curves, λ sweeps and the λ trade-off;
- :mod:`dashboard.figures.paired` -- per-image gains and the forest plot of paired changes.
"""
