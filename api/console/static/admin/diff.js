/* Two versions of a definition side by side: the older on the left with removed elements in red, the
 * newer on the right with added ones in green; changed elements are amber on both and carry a badge with
 * how many of their properties changed. The element-level diff (server-rendered beside the diagrams)
 * links to the elements: choosing a row selects and centres the element in both drawings. */
(function () {
  'use strict';

  var root = document.getElementById('gf-diff');
  if (!root) { return; }
  var cfg = JSON.parse(root.getAttribute('data-config'));
  var viewers = {};

  function h(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function mark(viewer, side) {
    var canvas = viewer.get('canvas'), registry = viewer.get('elementRegistry'), overlays = viewer.get('overlays');
    cfg.elements.forEach(function (e) {
      var shown = (side === 'from' && e.change !== 'added') || (side === 'to' && e.change !== 'removed');
      if (!shown || !registry.get(e.id)) { return; }
      canvas.addMarker(e.id, 'gf-diff-' + e.change);
      if (e.change === 'changed') {
        overlays.add(e.id, 'gf-diff', { position: { top: -10, right: 10 }, scale: { min: 1 },
          html: h('div', { 'class': 'gf-diff-badge', title: e.summary }, String(e.count)) });
      }
    });
  }

  function open(side) {
    var viewer = new window.BpmnJS({ container: '#gf-diff-' + side });
    viewers[side] = viewer;
    return fetch(cfg[side + '_url'], { credentials: 'same-origin' }).then(function (r) { return r.json(); })
      .then(function (data) {
        var xml = data.files[cfg.file] || data.files[data.main];
        return viewer.importXML(xml);
      }).then(function () { viewer.get('canvas').zoom('fit-viewport'); mark(viewer, side); });
  }

  function focus(id) {
    Object.keys(viewers).forEach(function (side) {
      var v = viewers[side], shape = v.get('elementRegistry').get(id);
      v.get('canvas').removeMarker && v.get('elementRegistry').getAll().forEach(function (e) { v.get('canvas').removeMarker(e.id, 'gf-diff-focus'); });
      if (shape) {
        v.get('canvas').addMarker(id, 'gf-diff-focus');
        v.get('canvas').zoom(0.8);
        v.get('canvas').scrollToElement(shape);
      }
    });
    document.querySelectorAll('.gf-diff-row').forEach(function (row) {
      row.classList.toggle('gf-diff-row-focus', row.getAttribute('data-element') === id);
    });
  }

  document.querySelectorAll('.gf-diff-row button[data-element]').forEach(function (b) {
    b.addEventListener('click', function () { focus(b.getAttribute('data-element')); });
  });

  Promise.all([open('from'), open('to')]).then(function () { root.setAttribute('data-ready', '1'); })
    .catch(function (e) { document.getElementById('gf-status').textContent = '图无法显示 The diagrams could not be drawn: ' + e; });
})();
