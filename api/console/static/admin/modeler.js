/* The process administrator's editor: bpmn-js Modeler with GridFlow's own properties form beside it.
 *
 * The form reads and writes what the engine reads: the lane's role (the code in parentheses at the end of
 * the lane's name), `spiffworkflow:properties` entries (status, status_on_*, form fields with types,
 * unit / agency_level variables, max_returns, explanation, reviews), timers, conditions and scripts.
 * Every change goes through bpmn-js's `modeling` service, so it is undoable and saveXML writes it in the
 * spiffworkflow namespace through the moddle descriptor loaded beside this file.
 *
 * "检查 Check" sends the drawing (and the definition's other files) to the server's deploy checks without
 * deploying; each problem is marked on its element (marker + overlay with the message in Chinese and
 * English) and listed; "部署 Deploy" deploys when the server accepts it.
 */
(function () {
  'use strict';

  var root = document.getElementById('gf-modeler');
  if (!root) { return; }
  var cfg = JSON.parse(root.getAttribute('data-config'));
  var FORM_TYPES = ['str', 'int', 'bool', 'list', 'dict'];
  var KNOWN = ['status', 'status_on_sign', 'status_on_return', 'status_on_refuse', 'form', 'unit',
               'agency_level', 'max_returns', 'explanation', 'reviews'];
  var TIMER_KINDS = [['timeDuration', '时长 duration'], ['timeDate', '时刻 date'], ['timeCycle', '周期 cycle']];

  var state = { files: {}, main: null, modeler: null, problems: [], dirty: false };
  var el = function (id) { return document.getElementById(id); };

  // ---- small DOM helpers (no innerHTML with data: everything goes in as text) ------------------------

  function h(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') { node.textContent = attrs[k]; }
      else if (k === 'on') { Object.keys(attrs.on).forEach(function (e) { node.addEventListener(e, attrs.on[e]); }); }
      else if (attrs[k] === true) { node.setAttribute(k, ''); }
      else if (attrs[k] !== false && attrs[k] !== null && attrs[k] !== undefined) { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c) { node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); } });
    return node;
  }

  var uid = 0;
  function labelled(labelText, control, hint) {
    var id = control.id || ('gf-f' + (++uid));
    control.id = id;
    return h('div', { 'class': 'gf-field' }, [h('label', { 'for': id, text: labelText }), control,
      hint ? h('div', { 'class': 'gf-hint', text: hint }) : null]);
  }

  function status(text, kind) {
    var box = el('gf-status');
    box.textContent = text;
    box.className = 'gf-status' + (kind ? ' gf-status-' + kind : '');
  }

  // ---- reading and writing the business object --------------------------------------------------------

  function svc(name) { return state.modeler.get(name); }

  function propsContainer(bo) {
    var ext = bo.extensionElements;
    if (!ext || !ext.values) { return null; }
    for (var i = 0; i < ext.values.length; i++) {
      if (ext.values[i].$instanceOf && ext.values[i].$instanceOf('spiffworkflow:Properties')) { return ext.values[i]; }
    }
    return null;
  }

  function readProps(bo) {
    var c = propsContainer(bo);
    var out = {};
    ((c && c.properties) || []).forEach(function (p) { out[p.name] = p.value; });
    return out;
  }

  function setProp(element, name, value) {
    var modeling = svc('modeling'), moddle = svc('moddle');
    var bo = element.businessObject;
    value = (value === null || value === undefined) ? '' : String(value);
    var container = propsContainer(bo);
    var existing = container && (container.properties || []).filter(function (p) { return p.name === name; })[0];
    if (!value) {
      if (existing) {
        modeling.updateModdleProperties(element, container,
          { properties: container.properties.filter(function (p) { return p !== existing; }) });
      }
      return;
    }
    if (existing) {
      if (existing.value !== value) { modeling.updateModdleProperties(element, existing, { value: value }); }
      return;
    }
    var ext = bo.extensionElements;
    if (!ext) {
      ext = moddle.create('bpmn:ExtensionElements', { values: [] });
      ext.$parent = bo;
      modeling.updateModdleProperties(element, bo, { extensionElements: ext });
    }
    if (!container) {
      container = moddle.create('spiffworkflow:Properties', { properties: [] });
      container.$parent = ext;
      modeling.updateModdleProperties(element, ext, { values: (ext.values || []).concat([container]) });
    }
    var prop = moddle.create('spiffworkflow:Property', { name: name, value: value });
    prop.$parent = container;
    modeling.updateModdleProperties(element, container, { properties: (container.properties || []).concat([prop]) });
  }

  function expression(body) {
    var fe = svc('moddle').create('bpmn:FormalExpression', { body: body });
    return fe;
  }

  function timerOf(bo) {
    return (bo.eventDefinitions || []).filter(function (d) { return d.$type === 'bpmn:TimerEventDefinition'; })[0];
  }

  // ---- form fields: "name:type, optional?:type" ------------------------------------------------------

  function parseForm(text) {
    if (!text || !text.trim()) { return []; }
    return text.split(',').map(function (part) {
      var m = /^\s*([^:?\s]*)(\?)?\s*:\s*(\S*)\s*$/.exec(part) || [null, part.trim(), '', 'str'];
      return { name: m[1], required: !m[2], type: m[3] };
    });
  }

  function formText(fields) {
    return fields.filter(function (f) { return f.name; })
      .map(function (f) { return f.name + (f.required ? '' : '?') + ':' + f.type; }).join(', ');
  }

  function formEditor(element, text) {
    var fields = parseForm(text);
    var table = h('table', { 'class': 'gf-form-fields', id: 'gf-form-fields' });
    function save() { setProp(element, 'form', formText(fields)); }
    function render() {
      table.textContent = '';
      table.appendChild(h('tr', {}, [h('th', { text: '字段 field' }), h('th', { text: '类型 type' }),
        h('th', { text: '必填 required' }), h('th', {})]));
      fields.forEach(function (f, i) {
        var name = h('input', { type: 'text', value: f.name, 'aria-label': '字段名 field name ' + (i + 1),
          'class': 'gf-form-name', on: { change: function () { f.name = name.value.trim(); save(); } } });
        var type = h('select', { 'aria-label': '字段类型 field type ' + (i + 1), 'class': 'gf-form-type',
          on: { change: function () { f.type = type.value; save(); } } },
          FORM_TYPES.concat(FORM_TYPES.indexOf(f.type) < 0 ? [f.type] : []).map(function (t) {
            return h('option', { value: t, selected: t === f.type, text: t });
          }));
        var req = h('input', { type: 'checkbox', checked: f.required, 'aria-label': '必填 required ' + (i + 1),
          on: { change: function () { f.required = req.checked; save(); } } });
        var del = h('button', { type: 'button', 'class': 'gf-small', 'aria-label': '删除字段 remove field ' + (i + 1),
          text: '×', on: { click: function () { fields.splice(i, 1); save(); render(); } } });
        table.appendChild(h('tr', {}, [h('td', {}, [name]), h('td', {}, [type]), h('td', {}, [req]), h('td', {}, [del])]));
      });
    }
    render();
    var add = h('button', { type: 'button', id: 'gf-form-add', text: '添加字段 Add field',
      on: { click: function () { fields.push({ name: '', type: 'str', required: false }); render();
        var inputs = table.querySelectorAll('.gf-form-name'); inputs[inputs.length - 1].focus(); } } });
    return h('fieldset', { 'class': 'gf-group' }, [h('legend', { text: '表单 Form (form)' }), table, add,
      h('div', { 'class': 'gf-hint', text: '完成任务时须提交的数据；字段名用英文字母开头。 The data completing the task must carry.' })]);
  }

  // ---- the form for one element ----------------------------------------------------------------------

  function textInput(value, onChange, attrs) {
    var input = h('input', Object.assign({ type: 'text', value: value || '' }, attrs || {}));
    input.addEventListener('change', function () { onChange(input.value.trim()); });
    return input;
  }

  function propInput(element, props, name, label, hint, attrs) {
    return labelled(label, textInput(props[name], function (v) { setProp(element, name, v); },
      Object.assign({ 'data-prop': name }, attrs || {})), hint);
  }

  function laneRole(name) {
    var m = /\(([^()]*)\)\s*$/.exec(name || '');
    return m ? m[1].trim() : (cfg.roles.indexOf((name || '').trim()) >= 0 ? name.trim() : '');
  }

  function laneLabel(name) { return (name || '').replace(/\s*\([^()]*\)\s*$/, ''); }

  function renderForm(element) {
    var panel = el('gf-props');
    panel.textContent = '';
    panel.scrollTop = 0;
    if (!element) {
      panel.appendChild(h('p', { 'class': 'gf-hint', text: '选择图中的元素以编辑其属性。 Select an element to edit its properties.' }));
      return;
    }
    var bo = element.businessObject;
    var modeling = svc('modeling');
    var type = bo.$type.replace('bpmn:', '');
    panel.appendChild(h('h2', { text: (bo.name || bo.id) }));
    panel.appendChild(h('div', { 'class': 'gf-hint', text: type + ' · id ' + bo.id }));
    markProblemsIn(panel, bo.id);

    if (type === 'Lane') {
      var label = textInput(laneLabel(bo.name), function (v) {
        modeling.updateProperties(element, { name: v + (role.value ? ' (' + role.value + ')' : '') });
      }, { id: 'gf-lane-label' });
      var role = h('select', { id: 'gf-lane-role', on: { change: function () {
        modeling.updateProperties(element, { name: laneLabel(bo.name) + (role.value ? ' (' + role.value + ')' : '') });
      } } }, [h('option', { value: '', text: '—' })].concat(cfg.roles.map(function (r) {
        return h('option', { value: r, selected: r === laneRole(bo.name), text: r });
      })));
      panel.appendChild(labelled('名称 Name', label));
      panel.appendChild(labelled('角色 Role', role, '泳道中的人工任务由此角色办理。 Human tasks in this lane are this role\'s.'));
      return;
    }

    if (type !== 'Process' && type !== 'Collaboration') {
      panel.appendChild(labelled('名称 Name', textInput(bo.name, function (v) { modeling.updateProperties(element, { name: v }); },
        { id: 'gf-name' })));
    }

    if (type === 'SequenceFlow') {
      var cond = h('textarea', { id: 'gf-condition', rows: 3 });
      cond.value = (bo.conditionExpression && bo.conditionExpression.body) || '';
      cond.addEventListener('change', function () {
        modeling.updateProperties(element, { conditionExpression: cond.value.trim() ? expression(cond.value.trim()) : undefined });
      });
      panel.appendChild(labelled('条件 Condition', cond, '留空即无条件（或为网关的默认流）。 Empty: unconditional.'));
      return;
    }

    if (type === 'ScriptTask') {
      var script = h('textarea', { id: 'gf-script', rows: 6, 'class': 'gf-code' });
      script.value = bo.script || '';
      script.addEventListener('change', function () { modeling.updateProperties(element, { script: script.value }); });
      panel.appendChild(labelled('脚本 Script', script));
    }

    var timer = timerOf(bo);
    if (timer) { panel.appendChild(timerEditor(element, timer)); }

    if (/Task$|Event$/.test(type) || type === 'CallActivity' || type === 'SubProcess') {
      var props = readProps(bo);
      var statusList = 'gf-statuses';
      var group = h('fieldset', { 'class': 'gf-group' }, [h('legend', { text: 'GridFlow 属性 properties' })]);
      group.appendChild(propInput(element, props, 'status', '状态 status', '到达此元素时事项的状态。 The matter\'s status on reaching it.', { list: statusList }));
      if (type === 'UserTask' || type === 'ManualTask') {
        group.appendChild(propInput(element, props, 'status_on_sign', '签收后状态 status_on_sign', null, { list: statusList }));
        group.appendChild(propInput(element, props, 'status_on_return', '退单后状态 status_on_return', null, { list: statusList }));
        group.appendChild(propInput(element, props, 'status_on_refuse', '拒绝后状态 status_on_refuse', null, { list: statusList }));
        group.appendChild(propInput(element, props, 'unit', '责任单位变量 unit', '保存责任单位代码的变量名。 The variable holding the unit code.'));
        group.appendChild(propInput(element, props, 'agency_level', '机构层级变量 agency_level', '保存机构层级的变量名。 The variable holding the agency level.'));
        group.appendChild(propInput(element, props, 'max_returns', '最多退单次数 max_returns', null, { type: 'number', min: '0' }));
        var expl = h('input', { type: 'checkbox', id: 'gf-explanation', checked: props.explanation === 'true',
          on: { change: function () { setProp(element, 'explanation', expl.checked ? 'true' : ''); } } });
        group.appendChild(labelled('书面说明任务 explanation', expl, '超期单位的书面说明。 The overdue unit\'s written explanation.'));
        group.appendChild(propInput(element, props, 'reviews', '审核的任务 reviews', '此任务审核的说明任务的 id。 Id of the explanation task it reviews.'));
      }
      panel.appendChild(group);
      if (type === 'UserTask' || type === 'ManualTask') { panel.appendChild(formEditor(element, props.form)); }
      var others = Object.keys(props).filter(function (k) { return KNOWN.indexOf(k) < 0; });
      if (others.length) {
        var og = h('fieldset', { 'class': 'gf-group' }, [h('legend', { text: '其他属性 Other properties' })]);
        others.forEach(function (k) { og.appendChild(propInput(element, props, k, k)); });
        panel.appendChild(og);
      }
    }
  }

  function timerEditor(element, timer) {
    var modeling = svc('modeling');
    var kind = TIMER_KINDS.filter(function (k) { return timer[k[0]]; }).map(function (k) { return k[0]; })[0] || 'timeDuration';
    var current = timer[kind] ? timer[kind].body : '';
    var select = h('select', { id: 'gf-timer-kind' }, TIMER_KINDS.map(function (k) {
      return h('option', { value: k[0], selected: k[0] === kind, text: k[1] });
    }));
    var text = h('input', { type: 'text', id: 'gf-timer-value', value: current || '', 'class': 'gf-code' });
    function save() {
      var update = { timeDuration: undefined, timeDate: undefined, timeCycle: undefined };
      if (text.value.trim()) { update[select.value] = expression(text.value.trim()); }
      modeling.updateModdleProperties(element, timer, update);
    }
    select.addEventListener('change', save);
    text.addEventListener('change', save);
    var days = h('input', { type: 'number', min: '1', value: '3', id: 'gf-timer-days', 'class': 'gf-narrow', 'aria-label': '天数 days' });
    function helper(label, kindName, make) {
      return h('button', { type: 'button', 'class': 'gf-small', text: label, on: { click: function () {
        select.value = kindName; text.value = make(parseInt(days.value, 10) || 1); save();
      } } });
    }
    return h('fieldset', { 'class': 'gf-group' }, [h('legend', { text: '定时 Timer' }),
      labelled('类型 Kind', select), labelled('表达式 Expression', text,
        '时长须加引号，如 "P3D"；工作日用 add_working_days(now(), 3)。 Quote a duration ("P3D").'),
      h('div', { 'class': 'gf-helpers' }, [days,
        helper('工作日 working days', 'timeDate', function (n) { return 'add_working_days(now(), ' + n + ')'; }),
        helper('工作时 working hours', 'timeDate', function (n) { return 'add_working_hours(now(), ' + n + ')'; }),
        helper('自然日 days', 'timeDuration', function (n) { return '"P' + n + 'D"'; }),
        helper('时限表 time-limit table', 'timeDate', function () { return 'handling_deadline(now(), sub_category, urgency)'; })])]);
  }

  // ---- problems on the drawing ----------------------------------------------------------------------

  function clearProblems() {
    var overlays = svc('overlays'), canvas = svc('canvas'), registry = svc('elementRegistry');
    overlays.remove({ type: 'gf-problem' });
    registry.getAll().forEach(function (e) { canvas.removeMarker(e.id, 'gf-has-problem'); });
    state.problems = [];
    el('gf-problems').textContent = '';
  }

  function markProblemsIn(panel, id) {
    state.problems.filter(function (p) { return (p.shape_id || p.element_id) === id; }).forEach(function (p) {
      panel.appendChild(h('div', { 'class': 'gf-problem-text', role: 'alert' },
        [h('div', { text: p.message.zh }), h('div', { text: p.message.en })]));
    });
  }

  // A problem may name an element drawn inside another's shape (a timer's event definition, a flow's
  // condition, a loop marker): it is shown on the shape that holds it.
  function shapeFor(id) {
    var registry = svc('elementRegistry');
    if (!id) { return null; }
    var direct = registry.get(id);
    if (direct) { return direct; }
    return registry.filter(function (e) {
      var bo = e.businessObject || {};
      var inner = (bo.eventDefinitions || []).concat([bo.conditionExpression, bo.loopCharacteristics]);
      return inner.some(function (x) { return x && x.id === id; });
    })[0] || null;
  }

  function showProblems(problems) {
    clearProblems();
    state.problems = problems;
    var overlays = svc('overlays'), canvas = svc('canvas'), registry = svc('elementRegistry');
    var list = el('gf-problems');
    if (!problems.length) { return; }
    list.appendChild(h('h2', { text: '问题 Problems (' + problems.length + ')' }));
    var ul = h('ul', {});
    var counts = {};
    problems.forEach(function (p) {
      var shape = shapeFor(p.element_id);
      if (shape) {
        p.shape_id = shape.id;
        canvas.addMarker(shape.id, 'gf-has-problem');
        counts[shape.id] = (counts[shape.id] || 0) + 1;
        overlays.add(shape.id, 'gf-problem', {
          position: { top: -8 - 26 * (counts[shape.id] - 1), left: 0 }, scale: { min: 1 },
          html: h('div', { 'class': 'gf-problem-overlay', 'data-element': shape.id, title: p.message.en },
            [h('strong', { text: '! ' }), h('span', { text: p.message.zh })])
        });
      }
      var where = p.element_id ? (p.element_id + (shape ? '' : ' (不在图中 not drawn)')) : p.file;
      ul.appendChild(h('li', { 'data-element': shape ? shape.id : (p.element_id || '') }, [
        h('button', { type: 'button', 'class': 'gf-link', text: where, disabled: !shape, on: { click: function () {
          svc('selection').select(shape); svc('canvas').scrollToElement(shape);
        } } }),
        h('span', { 'class': 'gf-code-name', text: ' [' + p.code + '] ' }),
        h('span', { text: p.message.zh }), h('br', {}), h('span', { 'class': 'gf-en', text: p.message.en })]));
    });
    list.appendChild(ul);
  }

  // ---- talking to the server ------------------------------------------------------------------------

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute('content') : '';
  }

  // The console checks a CSRF token in the form of every POST: files go as a multipart form beside it.
  function post(url, files) {
    var form = new FormData();
    form.append('csrf_token', csrfToken());
    Object.keys(files).forEach(function (name) {
      form.append('files', new Blob([files[name]], { type: 'application/xml' }), name);
    });
    return fetch(url, { method: 'POST', credentials: 'same-origin', body: form }).then(function (r) {
      return r.text().then(function (text) {
        var data;
        try { data = JSON.parse(text); } catch (e) {
          data = { error: { message: { zh: '服务器返回 ' + r.status, en: 'the server answered ' + r.status } } };
        }
        return { status: r.status, data: data };
      });
    });
  }

  function currentFiles() {
    return state.modeler.saveXML({ format: true }).then(function (res) {
      var files = Object.assign({}, state.files);
      files[state.main] = res.xml;
      return files;
    });
  }

  function check() {
    status('正在检查… Checking…');
    return currentFiles().then(function (files) { return post(cfg.check_url, files); }).then(function (res) {
      if (res.status !== 200) { throw res.data; }
      showProblems(res.data.problems);
      renderForm(selected());
      el('gf-deploy').disabled = !res.data.ok;
      if (res.data.ok) { status('检查通过，可以部署。 No problems: ready to deploy.', 'ok'); }
      else { status('发现 ' + res.data.problems.length + ' 个问题，已在图中标出。 ' + res.data.problems.length + ' problem(s), marked on the diagram.', 'bad'); }
      return res.data;
    }).catch(failed);
  }

  function deploy() {
    status('正在部署… Deploying…');
    return currentFiles().then(function (files) { return post(cfg.deploy_url, files); }).then(function (res) {
      if (res.status === 422) {
        showProblems(res.data.problems || []);
        status('未部署：定义未通过检查。 Not deployed: the definition has problems.', 'bad');
        return;
      }
      if (res.status !== 200 && res.status !== 201) { throw res.data; }
      var links = el('gf-deployed');
      links.textContent = '';
      res.data.outcomes.forEach(function (o) {
        var text = o.created ? ('已部署 ' + o.key + ' 版本 ' + o.version + ' Deployed as version ' + o.version)
          : (o.key + ' 无变化，仍为版本 ' + o.version + ' Unchanged, still version ' + o.version);
        links.appendChild(h('div', {}, [h('span', { text: text + ' ' }), o.compare_url
          ? h('a', { href: o.compare_url, id: 'gf-compare-link', text: '查看与上一版的差异 Compare with the previous version' }) : null]));
      });
      state.dirty = false;
      status('部署完成。 Deployed.', 'ok');
    }).catch(failed);
  }

  function failed(err) {
    var msg = err && err.error && err.error.message;
    status(msg ? (msg.zh + ' ' + msg.en) : ('出错 Error: ' + err), 'bad');
  }

  function selected() {
    var sel = svc('selection').get();
    return sel.length === 1 ? sel[0] : null;
  }

  // A multi-instance task names its collection by a process variable (SpiffWorkflow reads
  // loopDataInputRef / loopDataOutputRef as variable names), not by the id of a data element, so
  // bpmn-moddle finds nothing to resolve, warns and would drop the name on save. Keep the name: a
  // stand-in data element with that id is written back as the same text.
  var VARIABLE_REFS = { loopDataInputRef: 'bpmn:DataInput', loopDataOutputRef: 'bpmn:DataOutput' };

  function keepVariableRefs(warnings) {
    var moddle = svc('moddle');
    return (warnings || []).filter(function (w) {
      var name = String(w.property || '').replace(/^bpmn:/, '');
      if (!VARIABLE_REFS[name] || !w.element || !w.value) { return true; }
      w.element.set(name, moddle.create(VARIABLE_REFS[name], { id: w.value }));
      return false;
    });
  }

  function openXml(xml) {
    return state.modeler.importXML(xml).then(function (result) {
      result.warnings = keepVariableRefs(result.warnings);
      svc('canvas').zoom('fit-viewport');
      clearProblems();
      renderForm(null);
      if (result.warnings && result.warnings.length) {
        status('导入有 ' + result.warnings.length + ' 条警告 Import warnings: ' + result.warnings.length, 'bad');
      }
    });
  }

  function openFile(file) {
    var reader = new FileReader();
    reader.onload = function () {
      state.files = {};
      state.main = file.name;
      el('gf-file-name').textContent = file.name;
      openXml(String(reader.result)).then(check).catch(function (e) { status('无法读取此文件 Cannot read the file: ' + e.message, 'bad'); });
    };
    reader.readAsText(file);
  }

  // ---- start -------------------------------------------------------------------------------------

  fetch(cfg.moddle_url, { credentials: 'same-origin' }).then(function (r) { return r.json(); }).then(function (descriptor) {
    state.modeler = new window.BpmnJS({ container: '#gf-canvas',
      moddleExtensions: { spiffworkflow: descriptor } });
    window.gridflowModeler = state.modeler;   // for the browser tests and the curious
    svc('eventBus').on('selection.changed', function () { renderForm(selected()); });
    svc('eventBus').on('commandStack.changed', function () {
      state.dirty = true;
      el('gf-deploy').disabled = true;   // check again after a change
    });
    el('gf-check').addEventListener('click', check);
    el('gf-deploy').addEventListener('click', deploy);
    el('gf-open').addEventListener('change', function (e) { if (e.target.files[0]) { openFile(e.target.files[0]); } });
    el('gf-download').addEventListener('click', function () {
      state.modeler.saveXML({ format: true }).then(function (res) {
        var a = h('a', { href: URL.createObjectURL(new Blob([res.xml], { type: 'application/xml' })), download: state.main || 'diagram.bpmn' });
        document.body.appendChild(a); a.click(); a.remove();
      });
    });
    window.addEventListener('beforeunload', function (e) { if (state.dirty) { e.preventDefault(); e.returnValue = ''; } });
    if (!cfg.files_url) { renderForm(null); status('打开一个 BPMN 文件开始。 Open a BPMN file to begin.'); root.setAttribute('data-ready', '1'); return; }
    return fetch(cfg.files_url, { credentials: 'same-origin' }).then(function (r) { return r.json(); }).then(function (data) {
      state.files = data.files;
      state.main = data.main;
      el('gf-file-name').textContent = data.main;
      return openXml(data.files[data.main]);
    }).then(function () { state.dirty = false; status('已打开版本 ' + cfg.version + ' Opened version ' + cfg.version); root.setAttribute('data-ready', '1'); });
  }).catch(function (e) { status('编辑器无法启动 The editor could not start: ' + e, 'bad'); });
})();
