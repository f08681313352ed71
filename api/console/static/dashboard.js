/* The dashboard's charts, drawn with ECharts from the figures at data-source; a click on a bar or point
   opens the list of the cases behind that number. No inline script. */
(function () {
  "use strict";
  var holder = document.getElementById("charts");
  if (!holder || !window.echarts) { return; }

  function percent(v) { return v === null || v === undefined ? null : Math.round(v * 1000) / 10; }

  function draw(id, option, drills) {
    var node = document.getElementById(id);
    var chart = window.echarts.init(node, null, { renderer: "svg" });
    option.animation = false;  // numbers, not motion: drawn at once (and screenshots show the real bars)
    chart.setOption(option);
    chart.on("click", function (event) {
      var href = drills && drills[event.seriesIndex] && drills[event.seriesIndex][event.dataIndex];
      if (href) { window.location.assign(href); }
    });
    window.addEventListener("resize", function () { chart.resize(); });
    node.setAttribute("data-drawn", "true");
    return chart;
  }

  function empty(option, data, text) {
    if (!data.length) { option.title = { text: text, left: "center", top: "middle", textStyle: { color: "#5b6673", fontSize: 14 } }; }
    return option;
  }

  fetch(holder.getAttribute("data-source"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
    .then(function (response) { if (!response.ok) { throw new Error(response.status); } return response.json(); })
    .then(function (d) {
      var names = d.groups.map(function (g) { return g.name; });
      var base = { tooltip: { trigger: "axis" }, legend: { top: 0, type: "scroll" }, grid: { left: 48, right: 16, top: 48, bottom: 56 },
                   xAxis: { type: "category", data: names, axisLabel: { interval: 0, rotate: names.length > 6 ? 30 : 0 } },
                   yAxis: { type: "value", minInterval: 1 } };
      draw("chart-groups", empty(Object.assign({}, base, {
        title: { text: d.texts.by_group, left: 0, top: 0, textStyle: { fontSize: 13 } },
        legend: { top: 20, type: "scroll" },
        series: d.counts.map(function (f) { return { name: d.labels[f], type: "bar", data: d.groups.map(function (g) { return g.values[f]; }) }; })
      }), d.groups, d.texts.none), d.counts.map(function (f) { return d.groups.map(function (g) { return g.drill[f]; }); }));
      draw("chart-rates", empty(Object.assign({}, base, {
        title: { text: d.texts.rates, left: 0, top: 0, textStyle: { fontSize: 13 } },
        legend: { top: 20, type: "scroll" },
        yAxis: { type: "value", max: 100 },
        series: d.rates.map(function (f) { return { name: d.labels[f], type: "bar", data: d.groups.map(function (g) { return percent(g.values[f]); }) }; })
      }), d.groups, d.texts.none), d.rates.map(function (f) { return d.groups.map(function (g) { return g.drill[f]; }); }));
      var months = d.months.map(function (m) { return m.period; });
      var trend = ["reported", "valid_reported", "overdue_open"];
      draw("chart-months", {
        title: { text: d.texts.trend, left: 0, top: 0, textStyle: { fontSize: 13 } },
        tooltip: { trigger: "axis" }, legend: { top: 20, type: "scroll" }, grid: { left: 48, right: 48, top: 56, bottom: 32 },
        xAxis: { type: "category", data: months },
        yAxis: [{ type: "value", minInterval: 1 }, { type: "value", max: 100, axisLabel: { formatter: "{value}%" } }],
        series: trend.map(function (f) { return { name: d.labels[f], type: "line", data: d.months.map(function (m) { return m.values[f]; }) }; })
          .concat([{ name: d.labels.closed_on_time_rate, type: "line", yAxisIndex: 1, lineStyle: { type: "dashed" },
                     data: d.months.map(function (m) { return percent(m.values.closed_on_time_rate); }) }])
      }, trend.concat(["closed_on_time_rate"]).map(function (f) { return d.months.map(function (m) { return m.drill[f]; }); }));
      holder.classList.add("ready");
    })
    .catch(function () {
      holder.classList.add("failed");
      holder.textContent = holder.getAttribute("data-failed");
    });
}());
