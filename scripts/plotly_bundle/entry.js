'use strict';
// The dashboard's plotly.js: the core (scatter, the cartesian axes, the modebar, selections, templates) and the
// trace types the dashboard's figures use. tests/test_charts.py checks that every trace type a figure uses is
// listed in TRACES (the bundle's header names them) and that the served bundle registers them.
var Plotly = require('plotly.js/lib/core');

Plotly.register([require('plotly.js/lib/bar'), require('plotly.js/lib/heatmap'), require('plotly.js/lib/image')]);

module.exports = Plotly;
