// The dashboard's chart: a Plotly figure drawn by the dashboard's plotly.js build (dashboard/static/), in the page's
// own document (a Streamlit v2 component, no iframe). See dashboard/charts.py for why.
//
// data: {figure: Plotly JSON (string), config: Plotly config, src: the bundle's URL, height: px, select: bool}
// state: "selection" = {box: [{x: [x0, x1], y: [y0, y1]}]} after a box selection, when data.select is true.

function loadPlotly(src) {
  // one <script> per page, however many charts: the bundle is fetched and evaluated once
  if (!window.__gvlabPlotly) {
    window.__gvlabPlotly = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.async = true;
      script.onload = () => (window.Plotly ? resolve(window.Plotly) : reject(new Error("no Plotly")));
      script.onerror = () => reject(new Error("could not load " + src));
      document.head.appendChild(script);
    });
  }
  return window.__gvlabPlotly;
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let div = parentElement.querySelector(":scope > .gvlab-chart");
  if (!div) {
    div = document.createElement("div");
    div.className = "gvlab-chart";
    div.style.width = "100%";
    parentElement.appendChild(div);
  }
  // the chart's space is held before plotly.js has loaded, so nothing below it moves when it draws
  div.style.minHeight = data.height + "px";
  div.__gvlabSetState = setStateValue;
  const figure = JSON.parse(data.figure);
  loadPlotly(data.src)
    .then((Plotly) => Plotly.react(div, figure.data, figure.layout, data.config))
    .then(() => {
      if (data.select && !div.__gvlabSelecting) {
        div.__gvlabSelecting = true;
        div.on("plotly_selected", (event) => {
          const range = event && event.range;
          const box = range && range.x ? [{ x: range.x, y: range.y }] : [];
          div.__gvlabSetState("selection", { box: box });
        });
      }
    })
    .catch((error) => {
      div.textContent =
        "The chart could not be drawn (" + error.message + "). The dashboard serves plotly.js from its " +
        "static folder: start it with `gvcore dashboard`.";
    });
  return () => {
    if (window.Plotly) {
      window.Plotly.purge(div);
    }
    div.remove();
  };
}
