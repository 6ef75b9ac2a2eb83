// Builds dashboard/static/plotly-gvlab-<version>.min.js (see README.md): `npm ci --ignore-scripts && node build.js`.
'use strict';
const fs = require('fs');
const path = require('path');
const esbuild = require('esbuild');
const { environmentPlugin } = require('esbuild-plugin-environment');
const InlineCSSPlugin = require('esbuild-plugin-inline-css');

const version = require('plotly.js/package.json').version;
// the trace types the dashboard's figures use: the bundle registers them and its header names them (the tests and
// dashboard/charts.py read it); scatter is part of plotly.js's core
const TRACES = ['scatter', 'bar', 'heatmap', 'image'];
// the bundle's entry: plotly.js's core (axes, modebar, selections, templates) with the other traces registered
const ENTRY =
  "'use strict';\nvar Plotly = require('plotly.js/lib/core');\n" +
  `Plotly.register([${TRACES.filter((t) => t !== 'scatter').map((t) => `require('plotly.js/lib/${t}')`).join(', ')}]);\n` +
  'module.exports = Plotly;\n';
const outfile = path.join(__dirname, '..', '..', 'dashboard', 'static', `plotly-gvlab-${version}.min.js`);

esbuild
  .build({
    // the options of plotly.js's own dist build (its esbuild-config.js), without the WebGL plugins
    stdin: { contents: ENTRY, resolveDir: __dirname, sourcefile: 'entry.js' },
    outfile,
    format: 'iife',
    globalName: 'Plotly',
    bundle: true,
    minify: true,
    sourcemap: false,
    plugins: [InlineCSSPlugin(), environmentPlugin({ NODE_DEBUG: false })],
    alias: { stream: 'stream-browserify' },
    define: { global: 'window', 'define.amd': 'false' },
    target: 'es2016',
    legalComments: 'eof',
    banner: {
      js:
        `/**\n* plotly.js (gvlab: ${TRACES.join(', ')} - minified) v${version}\n` +
        '* Copyright 2012-2026, Plotly, Inc.\n* All rights reserved.\n* Licensed under the MIT license\n' +
        '* Built by scripts/plotly_bundle/build.js\n*/',
    },
    logLevel: 'info',
  })
  .then(() => {
    for (const name of fs.readdirSync(path.dirname(outfile))) {
      if (name.startsWith('plotly-') && name.endsWith('.min.js') && path.join(path.dirname(outfile), name) !== outfile) {
        fs.unlinkSync(path.join(path.dirname(outfile), name)); // one bundle in the folder: the one just built
      }
    }
  })
  .catch(() => process.exit(1));
