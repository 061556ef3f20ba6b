/**
 * The status page served by the HTTP sink at `/`: plain HTML, CSS and browser JavaScript (no framework, no build
 * step, no inline script so a strict Content-Security-Policy holds). It reads `api/states` and
 * `api/batteries/<id>/history` once, then follows `api/events` (server-sent events). Relative URLs, so it also
 * works behind a reverse proxy under a path prefix. Layout is a single column on phones.
 *
 * The script is kept in ES5-style JavaScript without template literals (it lives inside one here).
 */

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<link rel="icon" href="data:,">
<title>Battery bank</title>
<link rel="stylesheet" href="app.css">
<script src="app.js" defer></script>
</head>
<body>
<header>
  <div>
    <h1 id="title">Battery bank</h1>
    <div class="sub"><span data-field="product">—</span> · <span data-field="connection">—</span></div>
  </div>
  <div class="status">
    <span id="health" class="badge" data-field="health">—</span>
    <span id="live" class="live off" title="live updates">connecting…</span>
  </div>
</header>
<nav id="tabs" aria-label="batteries"></nav>
<main>
  <p id="empty" class="empty">Waiting for data…</p>
  <section class="cards" aria-label="overview">
    <div class="card soc"><h3>State of charge</h3><b data-field="soc">—</b><div class="meter"><div id="soc-bar"></div></div></div>
    <div class="card"><h3>Voltage</h3><b data-field="voltage">—</b></div>
    <div class="card"><h3>Current</h3><b data-field="current">—</b><small data-field="direction"></small></div>
    <div class="card"><h3>Power</h3><b data-field="power">—</b></div>
    <div class="card"><h3>Remaining</h3><b data-field="remaining">—</b><small data-field="installed"></small></div>
    <div class="card"><h3>Temperature</h3><b data-field="temperature">—</b><small data-field="mos"></small></div>
    <div class="card"><h3>Health (SoH)</h3><b data-field="soh">—</b><small data-field="cycles"></small></div>
    <div class="card"><h3>Cell delta</h3><b data-field="cell-delta">—</b><small data-field="cell-range"></small></div>
  </section>
  <section aria-labelledby="limits-h">
    <h2 id="limits-h">Limits</h2>
    <div class="scroll"><table class="limits">
      <tr><th>Charge voltage (CVL)</th><td data-field="cvl">—</td><td class="reason" data-field="charge-mode"></td></tr>
      <tr><th>Charge current (CCL)</th><td data-field="ccl">—</td><td class="reason" data-field="ccl-reason"></td></tr>
      <tr><th>Discharge current (DCL)</th><td data-field="dcl">—</td><td class="reason" data-field="dcl-reason"></td></tr>
      <tr><th>Low voltage</th><td data-field="blv">—</td><td class="reason"></td></tr>
    </table></div>
  </section>
  <section aria-labelledby="cells-h">
    <h2 id="cells-h">Cells <small data-field="cell-summary"></small></h2>
    <div id="cells" class="cells"></div>
    <p class="legend"><span class="key min"></span>lowest <span class="key max"></span>highest <span class="key bal"></span>balancing</p>
  </section>
  <section id="members-section" aria-labelledby="members-h" hidden>
    <h2 id="members-h">Batteries</h2>
    <div class="scroll"><table id="members" class="members">
      <thead><tr><th>Battery</th><th>State</th><th>Voltage</th><th>Current</th><th>SoC</th><th>Min cell</th><th>Max cell</th><th>CCL</th><th>DCL</th><th>Alarm</th></tr></thead>
      <tbody></tbody>
    </table></div>
  </section>
  <section aria-labelledby="alarms-h">
    <h2 id="alarms-h">Alarms</h2>
    <ul id="alarms" class="alarms"></ul>
  </section>
  <section aria-labelledby="chart-h">
    <h2 id="chart-h">Last hour</h2>
    <canvas id="chart" height="240"></canvas>
    <p class="legend"><span class="key v"></span>voltage <span class="key i"></span>current <span class="key s"></span>SoC</p>
  </section>
</main>
<footer><span data-field="updated">no data yet</span></footer>
</body>
</html>
`;

export const STATUS_PAGE_CSS = `:root {
  --bg: #f4f5f7; --fg: #1c1e21; --muted: #6b7280; --card: #fff; --line: #e3e5e8;
  --ok: #16a34a; --warn: #d97706; --bad: #dc2626; --accent: #2563eb; --bal: #9333ea;
  --cell: #60a5fa; --v: #2563eb; --i: #d97706; --s: #16a34a;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}
@media (prefers-color-scheme: dark) {
  :root { --bg: #111318; --fg: #e8eaed; --muted: #9aa0a6; --card: #1b1e24; --line: #2c3038; --cell: #3b82f6; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); }
header { display: flex; justify-content: space-between; align-items: center; gap: 1rem; padding: .8rem 1rem; background: var(--card); border-bottom: 1px solid var(--line); flex-wrap: wrap; }
h1 { font-size: 1.25rem; margin: 0; }
h2 { font-size: 1rem; margin: 0 0 .5rem; }
h2 small { color: var(--muted); font-weight: normal; }
h3 { font-size: .75rem; margin: 0 0 .3rem; color: var(--muted); font-weight: 600; text-transform: uppercase; letter-spacing: .03em; }
.sub { color: var(--muted); font-size: .85rem; }
.status { display: flex; gap: .5rem; align-items: center; }
.badge { padding: .15rem .6rem; border-radius: 999px; font-size: .8rem; font-weight: 600; background: var(--line); }
.badge.online { background: var(--ok); color: #fff; }
.badge.stale { background: var(--warn); color: #fff; }
.badge.offline { background: var(--bad); color: #fff; }
.live { font-size: .8rem; color: var(--muted); }
.live.on::before { content: "●"; color: var(--ok); margin-right: .25rem; }
.live.off::before { content: "●"; color: var(--bad); margin-right: .25rem; }
nav { display: flex; gap: .4rem; padding: .6rem 1rem 0; flex-wrap: wrap; }
nav button { border: 1px solid var(--line); background: var(--card); color: var(--fg); border-radius: .5rem; padding: .35rem .8rem; font: inherit; cursor: pointer; }
nav button[aria-selected="true"] { border-color: var(--accent); box-shadow: inset 0 -2px 0 var(--accent); }
nav button .dot { display: inline-block; width: .55rem; height: .55rem; border-radius: 50%; margin-right: .35rem; background: var(--muted); }
nav button .dot.online { background: var(--ok); } nav button .dot.stale { background: var(--warn); } nav button .dot.offline { background: var(--bad); }
main { padding: 1rem; display: grid; gap: 1rem; max-width: 1100px; margin: 0 auto; }
section { background: var(--card); border: 1px solid var(--line); border-radius: .75rem; padding: .9rem; min-width: 0; }
section.cards { background: none; border: 0; padding: 0; display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: .6rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: .75rem; padding: .7rem .8rem; }
.card b { display: block; font-size: 1.45rem; font-variant-numeric: tabular-nums; }
.card small { color: var(--muted); font-size: .8rem; }
.meter { height: .45rem; background: var(--line); border-radius: 999px; overflow: hidden; margin-top: .35rem; }
.meter div { height: 100%; width: 0; background: var(--ok); transition: width .4s; }
.empty { color: var(--muted); text-align: center; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-weight: 600; font-size: .85rem; }
td.reason { color: var(--muted); white-space: normal; font-size: .85rem; }
.scroll { overflow-x: auto; }
.cells { display: grid; grid-template-columns: repeat(auto-fill, minmax(44px, 1fr)); gap: .35rem; }
.cell { display: flex; flex-direction: column; align-items: center; font-size: .7rem; font-variant-numeric: tabular-nums; }
.cell .track { position: relative; width: 100%; height: 110px; background: var(--line); border-radius: .3rem; overflow: hidden; }
.cell .bar { position: absolute; bottom: 0; left: 0; right: 0; background: var(--cell); transition: height .4s; }
.cell.min .bar { background: #0ea5e9; } .cell.max .bar { background: var(--bad); }
.cell.min .v { color: #0ea5e9; font-weight: 700; } .cell.max .v { color: var(--bad); font-weight: 700; }
.cell.bal .track { outline: 2px solid var(--bal); outline-offset: -2px; }
.cell.bal .bar { background-image: repeating-linear-gradient(45deg, transparent 0 4px, rgba(147, 51, 234, .55) 4px 8px); }
.cell .n { color: var(--muted); }
.legend { color: var(--muted); font-size: .8rem; margin: .5rem 0 0; display: flex; gap: .35rem; align-items: center; flex-wrap: wrap; }
.key { display: inline-block; width: .8rem; height: .8rem; border-radius: .2rem; margin-left: .4rem; }
.key.min { background: #0ea5e9; } .key.max { background: var(--bad); } .key.bal { outline: 2px solid var(--bal); }
.key.v { background: var(--v); } .key.i { background: var(--i); } .key.s { background: var(--s); }
.alarms { list-style: none; margin: 0; padding: 0; display: grid; gap: .3rem; }
.alarms li { padding: .35rem .6rem; border-radius: .4rem; background: var(--line); }
.alarms li.warning { background: rgba(217, 119, 6, .15); color: var(--warn); font-weight: 600; }
.alarms li.alarm { background: rgba(220, 38, 38, .15); color: var(--bad); font-weight: 600; }
.alarms li.none { color: var(--ok); }
.members td.online { color: var(--ok); } .members td.stale { color: var(--warn); } .members td.offline { color: var(--bad); }
canvas { width: 100%; height: 240px; display: block; }
footer { text-align: center; color: var(--muted); font-size: .8rem; padding: 0 1rem 1.5rem; }
@media (max-width: 600px) {
  header { padding: .6rem .8rem; }
  main { padding: .6rem; gap: .6rem; }
  section.cards { grid-template-columns: repeat(2, minmax(0, 1fr)); }
  .card b { font-size: 1.2rem; }
  .cells { grid-template-columns: repeat(auto-fill, minmax(36px, 1fr)); }
  .cell .track { height: 80px; }
  .limits th { white-space: normal; }
  .limits td.reason { min-width: 7rem; }
}
`;

export const STATUS_PAGE_JS = `(function () {
  'use strict';
  var HOUR = 3600000;
  var states = {};
  var order = [];
  var histories = {};
  var historyLoaded = {};
  var selected = null;
  var lastUpdate = 0;
  var updates = 0;
  var stepMs = 5000;

  function $(id) { return document.getElementById(id); }
  function isNum(v) { return typeof v === 'number' && isFinite(v); }
  function fmt(v, digits, unit) {
    if (!isNum(v)) return '\\u2014';
    return v.toFixed(digits) + (unit ? ' ' + unit : '');
  }
  function set(name, text) {
    var els = document.querySelectorAll('[data-field="' + name + '"]');
    for (var i = 0; i < els.length; i++) els[i].textContent = text;
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function words(name) {
    var s = name.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
    s = s.replace(/^bms /, 'BMS ').replace(/ soc$/, ' SoC');
    return s.charAt(0).toUpperCase() + s.slice(1);
  }
  function rank(id) { return states[id] && states[id].kind === 'bank' ? 0 : 1; }
  function byRank(a, b) { return rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0); }

  function upsert(p, fromEvent) {
    var isNew = !states[p.id];
    states[p.id] = p;
    if (isNew) {
      order.push(p.id);
      order.sort(byRank);
    }
    addPoint(p);
    lastUpdate = Date.now();
    if (fromEvent) { updates++; document.body.setAttribute('data-updates', String(updates)); }
    if (selected === null || !states[selected]) select(order[0]);
    else if (p.id === selected) render();
    renderTabs();
  }

  function addPoint(p) {
    var h = histories[p.id] || (histories[p.id] = []);
    var t = Date.parse(p.time);
    var last = h[h.length - 1];
    if (last && t - last[0] < stepMs) return;
    var off = p.health === 'offline';
    h.push([t, off ? null : p.voltage, off ? null : p.current, off ? null : p.soc]);
    while (h.length && h[0][0] < t - HOUR) h.shift();
  }

  function select(id) {
    selected = id;
    renderTabs();
    render();
    if (id && !historyLoaded[id]) {
      historyLoaded[id] = true;
      fetch('api/batteries/' + encodeURIComponent(id) + '/history', { cache: 'no-store' })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (j) {
          if (!j) return;
          if (isNum(j.stepMs)) stepMs = j.stepMs;
          var mine = histories[id] || [];
          var first = mine.length ? mine[0][0] : Infinity;
          histories[id] = j.points.filter(function (pt) { return pt[0] < first; }).concat(mine);
          if (id === selected) drawChart();
        })
        .catch(function () { historyLoaded[id] = false; });
    }
  }

  function renderTabs() {
    var nav = $('tabs');
    nav.textContent = '';
    if (order.length < 2) return;
    order.forEach(function (id) {
      var p = states[id];
      var b = el('button');
      b.type = 'button';
      b.setAttribute('role', 'tab');
      b.setAttribute('data-id', id);
      b.setAttribute('aria-selected', id === selected ? 'true' : 'false');
      b.appendChild(el('span', 'dot ' + p.health));
      b.appendChild(document.createTextNode((p.kind === 'bank' ? 'Bank ' : '') + id));
      b.addEventListener('click', function () { select(id); });
      nav.appendChild(b);
    });
  }

  function render() {
    var p = states[selected];
    $('empty').hidden = !!p;
    if (!p) return;
    document.title = (p.kind === 'bank' ? 'Bank ' : 'Battery ') + p.id + (isNum(p.soc) ? ' ' + Math.round(p.soc) + ' %' : '');
    $('title').textContent = (p.kind === 'bank' ? 'Bank ' : 'Battery ') + p.id;
    set('product', p.productName);
    set('connection', p.connection);
    var badge = $('health');
    badge.className = 'badge ' + p.health;
    set('health', p.health);
    set('soc', fmt(p.soc, 0, '%'));
    $('soc-bar').style.width = isNum(p.soc) ? Math.max(0, Math.min(100, p.soc)) + '%' : '0';
    set('voltage', fmt(p.voltage, 2, 'V'));
    set('current', fmt(p.current, 1, 'A'));
    set('direction', !isNum(p.current) ? '' : p.current > 0.05 ? 'charging' : p.current < -0.05 ? 'discharging' : 'idle');
    set('power', fmt(p.power, 0, 'W'));
    set('remaining', fmt(p.capacityRemaining, 1, 'Ah'));
    set('installed', isNum(p.capacityInstalled) ? 'of ' + fmt(p.capacityInstalled, 0, 'Ah') : '');
    var temps = p.temperatures.map(function (t) { return t.celsius; });
    set('temperature', temps.length ? (p.temperatureMin === p.temperatureMax ? fmt(p.temperatureMin, 1, '\\u00b0C') : fmt(p.temperatureMin, 1) + '\\u2013' + fmt(p.temperatureMax, 1, '\\u00b0C')) : '\\u2014');
    set('mos', isNum(p.mosTemperature) ? 'MOS ' + fmt(p.mosTemperature, 0, '\\u00b0C') : '');
    set('soh', fmt(p.soh, 0, '%'));
    set('cycles', isNum(p.cycles) ? p.cycles + ' cycles' : '');
    var c = p.cells;
    set('cell-delta', isNum(c.delta) ? (c.delta * 1000).toFixed(0) + ' mV' : '\\u2014');
    set('cell-range', isNum(c.min) ? fmt(c.min, 3) + '\\u2013' + fmt(c.max, 3, 'V') : '');
    set('cell-summary', c.voltages.length ? c.voltages.length + ' cells, min ' + fmt(c.min, 3, 'V') + ' (' + c.minCell + '), max ' + fmt(c.max, 3, 'V') + ' (' + c.maxCell + ')' : '');
    var l = p.limits;
    set('cvl', fmt(l.chargeVoltage, 2, 'V'));
    set('ccl', fmt(l.chargeCurrent, 1, 'A'));
    set('dcl', fmt(l.dischargeCurrent, 1, 'A'));
    set('blv', fmt(l.batteryLowVoltage, 2, 'V'));
    set('ccl-reason', l.chargeReason);
    set('dcl-reason', l.dischargeReason);
    set('charge-mode', l.chargeMode || '');
    renderCells(p);
    renderMembers(p);
    renderAlarms(p);
    drawChart();
  }

  function renderCells(p) {
    var box = $('cells');
    box.textContent = '';
    var c = p.cells;
    var vals = c.voltages.filter(isNum);
    if (!vals.length) { box.appendChild(el('p', 'empty', p.health === 'offline' ? 'offline' : 'no cell data')); return; }
    var lo = Math.min.apply(null, vals);
    var hi = Math.max.apply(null, vals);
    var span = Math.max(hi - lo, 0.02);
    var floor = lo - span * 1.5;
    var minIdx = c.voltages.indexOf(lo);
    var maxIdx = c.voltages.indexOf(hi);
    c.voltages.forEach(function (v, i) {
      var cls = 'cell';
      if (i === minIdx) cls += ' min';
      if (i === maxIdx && hi > lo) cls += ' max';
      if (c.balancing[i]) cls += ' bal';
      var cell = el('div', cls);
      cell.setAttribute('data-cell', String(i + 1));
      cell.title = 'Cell ' + (i + 1) + ': ' + fmt(v, 3, 'V') + (c.balancing[i] ? ', balancing' : '');
      var track = el('div', 'track');
      var bar = el('div', 'bar');
      bar.style.height = isNum(v) ? Math.max(4, Math.min(100, ((v - floor) / (hi - floor)) * 100)) + '%' : '0';
      track.appendChild(bar);
      cell.appendChild(track);
      cell.appendChild(el('span', 'v', fmt(v, 3)));
      cell.appendChild(el('span', 'n', (c.balancing[i] ? '\\u21c4 ' : '') + (i + 1)));
      box.appendChild(cell);
    });
  }

  function renderMembers(p) {
    var sec = $('members-section');
    var list = p.members || [];
    sec.hidden = list.length === 0;
    var body = $('members').tBodies[0];
    body.textContent = '';
    list.forEach(function (m) {
      var tr = el('tr');
      tr.setAttribute('data-member', m.id);
      var lim = m.limits || {};
      var minC = m.minCell && isNum(m.minCell.value) ? fmt(m.minCell.value, 3) + ' ' + (m.minCell.id || '') : '\\u2014';
      var maxC = m.maxCell && isNum(m.maxCell.value) ? fmt(m.maxCell.value, 3) + ' ' + (m.maxCell.id || '') : '\\u2014';
      var cells = [m.id, m.health, fmt(m.voltage, 2, 'V'), fmt(m.current, 1, 'A'), fmt(m.soc, 0, '%'), minC, maxC,
        fmt(lim.chargeCurrent, 0, 'A'), fmt(lim.dischargeCurrent, 0, 'A'), m.alarm === 2 ? 'alarm' : m.alarm === 1 ? 'warning' : 'ok'];
      cells.forEach(function (text, i) { tr.appendChild(el('td', i === 1 ? m.health : '', text)); });
      if (lim.chargeReason) tr.title = 'CCL: ' + lim.chargeReason + ' \\u00b7 DCL: ' + lim.dischargeReason;
      body.appendChild(tr);
    });
  }

  function renderAlarms(p) {
    var ul = $('alarms');
    ul.textContent = '';
    var active = p.alarms.active || [];
    if (!active.length) { ul.appendChild(el('li', 'none', 'No alarms')); return; }
    active.forEach(function (name) {
      var level = p.alarms[name];
      var li = el('li', level === 2 ? 'alarm' : 'warning', words(name) + ' \\u2014 ' + (level === 2 ? 'alarm' : 'warning'));
      li.setAttribute('data-alarm', name);
      ul.appendChild(li);
    });
  }

  function drawChart() {
    var canvas = $('chart');
    var pts = histories[selected] || [];
    var dpr = window.devicePixelRatio || 1;
    var w = canvas.clientWidth || 300;
    var h = canvas.clientHeight || 240;
    if (canvas.width !== Math.round(w * dpr)) canvas.width = Math.round(w * dpr);
    if (canvas.height !== Math.round(h * dpr)) canvas.height = Math.round(h * dpr);
    var ctx = canvas.getContext('2d');
    if (!ctx) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    var styles = getComputedStyle(document.documentElement);
    var muted = styles.getPropertyValue('--muted').trim() || '#888';
    var line = styles.getPropertyValue('--line').trim() || '#ddd';
    var now = Date.now();
    var t0 = now - HOUR;
    var series = [
      { i: 1, name: 'V', color: styles.getPropertyValue('--v').trim(), d: 2 },
      { i: 2, name: 'A', color: styles.getPropertyValue('--i').trim(), d: 1 },
      { i: 3, name: '%', color: styles.getPropertyValue('--s').trim(), d: 0 }
    ];
    var rowH = h / series.length;
    ctx.font = '11px system-ui, sans-serif';
    series.forEach(function (s, row) {
      var top = row * rowH + 6;
      var bottom = (row + 1) * rowH - 6;
      ctx.strokeStyle = line;
      ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(0, bottom + 5.5); ctx.lineTo(w, bottom + 5.5); ctx.stroke();
      var vals = pts.filter(function (pt) { return pt[0] >= t0 && isNum(pt[s.i]); }).map(function (pt) { return pt[s.i]; });
      ctx.fillStyle = muted;
      if (!vals.length) { ctx.fillText(s.name + ': no data', 4, top + 12); return; }
      var lo = Math.min.apply(null, vals);
      var hi = Math.max.apply(null, vals);
      if (s.name === 'A') { lo = Math.min(lo, 0); hi = Math.max(hi, 0); }
      if (hi - lo < 1e-6) { lo -= 1; hi += 1; }
      var y = function (v) { return bottom - ((v - lo) / (hi - lo)) * (bottom - top); };
      if (s.name === 'A') { ctx.strokeStyle = line; ctx.beginPath(); ctx.moveTo(0, y(0)); ctx.lineTo(w, y(0)); ctx.stroke(); }
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 1.6;
      ctx.beginPath();
      var pen = false;
      var prevT = 0;
      pts.forEach(function (pt) {
        var v = pt[s.i];
        if (pt[0] < t0 || !isNum(v)) { pen = false; return; }
        var x = ((pt[0] - t0) / HOUR) * w;
        if (pen && pt[0] - prevT <= stepMs * 4) ctx.lineTo(x, y(v)); else ctx.moveTo(x, y(v));
        pen = true;
        prevT = pt[0];
      });
      ctx.stroke();
      ctx.fillStyle = muted;
      ctx.fillText(fmt(hi, s.d, s.name), 4, top + 10);
      ctx.fillText(fmt(lo, s.d, s.name), 4, bottom);
      var last = vals[vals.length - 1];
      var label = fmt(last, s.d, s.name);
      ctx.fillStyle = s.color;
      ctx.fillText(label, w - ctx.measureText(label).width - 4, top + 10);
    });
  }

  function tick() {
    if (!lastUpdate) return;
    var s = Math.round((Date.now() - lastUpdate) / 1000);
    set('updated', 'updated ' + (s < 2 ? 'just now' : s + ' s ago') + ' \\u00b7 ' + new Date(lastUpdate).toLocaleTimeString());
  }

  function live() {
    var ind = $('live');
    var es = new EventSource('api/events');
    es.addEventListener('open', function () { ind.className = 'live on'; ind.textContent = 'live'; });
    es.addEventListener('error', function () { ind.className = 'live off'; ind.textContent = 'reconnecting\\u2026'; });
    es.addEventListener('state', function (e) {
      try { upsert(JSON.parse(e.data), true); } catch (err) { /* a bad event must not stop the page */ }
    });
  }

  function start() {
    fetch('api/states', { cache: 'no-store' })
      .then(function (r) { return r.ok ? r.json() : []; })
      .then(function (list) { list.forEach(function (p) { upsert(p, false); }); })
      .catch(function () { /* the event stream fills in */ })
      .then(live);
    setInterval(tick, 1000);
    setInterval(drawChart, 30000);
    window.addEventListener('resize', drawChart);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
`;
