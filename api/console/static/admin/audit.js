/* The auditor's case pages: the case's definition drawn read-only, with what the page is about marked.
 *
 * Replay: one step at a time (buttons, keys ← →, or choosing a row): the elements the step moved are
 * marked, those moved before it are shaded, and the first divergence is marked red.
 * As of a moment: a slider over the case's recorded events; letting go of it opens the case as it was
 * right after that event. Open tasks and waiting timers of that moment are marked. */
(function () {
  'use strict';

  var root = document.getElementById('gf-audit-case');
  if (!root) { return; }
  var cfg = JSON.parse(root.getAttribute('data-config'));
  var viewer = null;

  function each(list, fn) { Array.prototype.forEach.call(list, fn); }

  function unmark(cls) {
    var canvas = viewer.get('canvas');
    viewer.get('elementRegistry').getAll().forEach(function (e) { canvas.removeMarker(e.id, cls); });
  }

  function markAll(ids, cls) {
    var canvas = viewer.get('canvas'), registry = viewer.get('elementRegistry');
    (ids || []).forEach(function (id) { if (registry.get(id)) { canvas.addMarker(id, cls); } });
  }

  // ---- replay ------------------------------------------------------------------------------------

  var current = -1;
  function showStep(index) {
    var steps = cfg.steps || [];
    if (!steps.length) { return; }
    current = Math.max(0, Math.min(steps.length - 1, index));
    var step = steps[current];
    if (viewer) {
      unmark('gf-step'); unmark('gf-visited'); unmark('gf-step-diverged');
      steps.slice(0, current).forEach(function (s) { markAll(s.elements, 'gf-visited'); });
      markAll(step.elements, step.outcome === 'diverged' ? 'gf-step-diverged' : 'gf-step');
    }
    each(document.querySelectorAll('.gf-step-row'), function (row) {
      row.classList.toggle('gf-step-current', Number(row.getAttribute('data-index')) === current);
    });
    var label = document.getElementById('gf-step-label');
    if (label) {
      label.textContent = '第 ' + (current + 1) + ' / ' + steps.length + ' 步 Step ' + (current + 1) + ' of ' + steps.length +
        ' · ' + step.command + ' · ' + step.outcome_text;
    }
  }

  function wireReplay() {
    var prev = document.getElementById('gf-step-prev'), next = document.getElementById('gf-step-next');
    if (!prev) { return; }
    prev.addEventListener('click', function () { showStep(current - 1); });
    next.addEventListener('click', function () { showStep(current + 1); });
    var jump = document.getElementById('gf-step-divergence');
    if (jump) { jump.addEventListener('click', function () { showStep(cfg.divergence_index); }); }
    each(document.querySelectorAll('.gf-step-row button'), function (b) {
      b.addEventListener('click', function () { showStep(Number(b.getAttribute('data-index'))); });
    });
    document.addEventListener('keydown', function (e) {
      if (e.target.tagName === 'INPUT' || e.target.tagName === 'TEXTAREA') { return; }
      if (e.key === 'ArrowLeft') { showStep(current - 1); }
      if (e.key === 'ArrowRight') { showStep(current + 1); }
    });
  }

  // ---- as of a moment ----------------------------------------------------------------------------

  function wireSlider() {
    var slider = document.getElementById('gf-asof-slider');
    if (!slider) { return; }
    var out = document.getElementById('gf-asof-slider-at');
    function label() {
      var ev = cfg.events[Number(slider.value)];
      out.textContent = ev ? ('#' + ev.seq + ' ' + ev.at_text + ' ' + ev.command) : '';
    }
    slider.addEventListener('input', label);
    slider.addEventListener('change', function () {
      var ev = cfg.events[Number(slider.value)];
      var url = new URL(window.location.href);
      url.searchParams.set('at', ev.at);
      url.searchParams.delete('reveal');
      window.location.assign(url.toString());
    });
    label();
  }

  // ---- start -------------------------------------------------------------------------------------

  wireReplay();
  wireSlider();
  if (!cfg.files_url) { showStep(cfg.divergence_index !== null && cfg.divergence_index !== undefined ? cfg.divergence_index : 0); return; }
  viewer = new window.BpmnJS({ container: '#gf-audit-canvas' });
  fetch(cfg.files_url, { credentials: 'same-origin' }).then(function (r) { return r.json(); })
    .then(function (data) { return viewer.importXML(data.files[data.main]); })
    .then(function () {
      viewer.get('canvas').zoom('fit-viewport');
      markAll(cfg.visited, 'gf-visited');
      markAll(cfg.open, 'gf-open');
      markAll(cfg.waiting, 'gf-waiting');
      if (cfg.steps) {
        showStep(cfg.divergence_index !== null && cfg.divergence_index !== undefined ? cfg.divergence_index : 0);
      }
      root.setAttribute('data-ready', '1');
    })
    .catch(function (e) { document.getElementById('gf-audit-canvas').textContent = '图无法显示 The diagram could not be drawn: ' + e; });
})();
