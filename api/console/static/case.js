/* The case page's diagram: the definition drawn with bpmn-js, the path taken marked. No inline script:
   the page names the data address in data-path; everything is read from there. */
(function () {
  "use strict";
  var holder = document.getElementById("diagram");
  if (!holder || typeof window.BpmnJS !== "function") { return; }

  function fail() {
    holder.classList.add("failed");
    holder.textContent = holder.getAttribute("data-failed");
  }

  function mark(viewer, path) {
    var canvas = viewer.get("canvas");
    var registry = viewer.get("elementRegistry");
    var overlays = viewer.get("overlays");
    var done = {}, reached = {};
    path.done.forEach(function (id) { done[id] = true; reached[id] = true; });
    path.active.forEach(function (id) { reached[id] = true; });
    path.waiting.forEach(function (w) { reached[w.element_id] = true; });
    path.done.forEach(function (id) { if (registry.get(id)) { canvas.addMarker(id, "gf-done"); } });
    path.active.forEach(function (id) { if (registry.get(id)) { canvas.addMarker(id, "gf-active"); } });
    registry.filter(function (el) { return el.type === "bpmn:SequenceFlow"; }).forEach(function (flow) {
      if (flow.source && flow.target && done[flow.source.id] && reached[flow.target.id]) {
        canvas.addMarker(flow.id, "gf-done");
      }
    });
    var list = document.getElementById("waiting");
    path.waiting.forEach(function (w) {
      var element = registry.get(w.element_id);
      if (element) {
        canvas.addMarker(w.element_id, "gf-waiting");
        var note = document.createElement("div");
        note.className = "gf-due";
        note.textContent = w.due_text || "…";
        overlays.add(w.element_id, { position: { bottom: -4, left: -10 }, html: note });
      }
      if (list) {
        var item = document.createElement("li");
        item.textContent = (element && element.businessObject.name || w.element_id) + (w.due_text ? " · " + w.due_text : "");
        list.appendChild(item);
      }
    });
    holder.setAttribute("data-marked", String(path.done.length));
  }

  var viewer = new window.BpmnJS({ container: holder });
  fetch(holder.getAttribute("data-path"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
    .then(function (response) { if (!response.ok) { throw new Error(response.status); } return response.json(); })
    .then(function (path) {
      return viewer.importXML(path.diagram).then(function () {
        viewer.get("canvas").zoom("fit-viewport");
        mark(viewer, path);
        holder.classList.add("ready");
      });
    })
    .catch(fail);
}());
