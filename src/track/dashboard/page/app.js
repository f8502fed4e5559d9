// Kiln's dashboard page: the run table (sort, filter, columns), curves of the selected runs,
// their params diff, parallel coordinates, and a run detail view; live through /api/events.
// Plain browser JavaScript, no build step; charts are ECharts (served by Kiln from node_modules).
'use strict';

const state = {
  runs: [],
  selected: new Set(),
  sort: { key: 'started', dir: -1 },
  extraColumns: [],
  tab: 'curves',
  metric: 'train/loss',
  parallelMetric: null,
  route: '',
};
const charts = {};

const $ = (selector) => document.querySelector(selector);
const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'class') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child ?? '')));
  return node;
};
const getJson = async (url) => {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status} ${(await response.json()).message}`);
  return response.json();
};

// The same formatting as `kiln runs` (src/track/compare.ts), for the table's own columns; the
// diff tab shows the server's formatted strings.
const formatResult = (v) => (v === null || v === undefined ? '-' : Math.abs(v) >= 1000 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3) : v.toFixed(4));
const formatParam = (v) => {
  if (v === null || v === undefined) return '-';
  try {
    const parsed = JSON.parse(v);
    return typeof parsed === 'string' ? parsed : v;
  } catch {
    return v;
  }
};
const iso = (ms) => (ms === null ? '-' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19));
const duration = (run) => {
  const s = Math.round(((run.endedAt ?? run.heartbeatAt) - run.startedAt) / 1000);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
};

/** Result keys most runs share (hybrid ones left to the column chooser): the default columns. */
function defaultResultKeys(runs) {
  const counts = new Map();
  for (const run of runs) for (const key of Object.keys(run.results)) if (!key.includes('/hybrid/')) counts.set(key, (counts.get(key) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 5).map(([key]) => key);
}

function columns() {
  const base = [
    { key: 'id', label: 'run', value: (r) => r.id },
    { key: 'task', label: 'task', value: (r) => r.task ?? r.kind },
    { key: 'status', label: 'status', value: (r) => r.status },
    { key: 'started', label: 'started (UTC)', value: (r) => r.startedAt, show: (r) => iso(r.startedAt) },
    { key: 'duration', label: 'time', value: (r) => (r.endedAt ?? r.heartbeatAt) - r.startedAt, show: duration, num: true },
    { key: 'tags', label: 'tags', value: (r) => Object.entries(r.tags).map(([k, v]) => `${k}=${v}`).join(' ') },
  ];
  const results = defaultResultKeys(state.runs).map((key) => ({ key: `result:${key}`, label: key, value: (r) => r.results[key] ?? null, show: (r) => formatResult(r.results[key]), num: true }));
  const extra = state.extraColumns.map((key) =>
    key.startsWith('result:')
      ? { key, label: key.slice(7), value: (r) => r.results[key.slice(7)] ?? null, show: (r) => formatResult(r.results[key.slice(7)]), num: true, removable: true }
      : { key, label: key.slice(6), value: (r) => paramValue(r, key.slice(6)), show: (r) => formatParam(r.params[key.slice(6)]), removable: true },
  );
  return [...base, ...results.filter((c) => !state.extraColumns.includes(c.key)), ...extra];
}

function paramValue(run, key) {
  const raw = run.params[key];
  if (raw === undefined) return null;
  try {
    const parsed = JSON.parse(raw);
    return typeof parsed === 'number' || typeof parsed === 'string' ? parsed : raw;
  } catch {
    return raw;
  }
}

/** Filter terms: `status:x`, `task:x`, `tag:k=v`, `param=value`, or text in the id, name or tags. */
function matches(run, query) {
  return query
    .split(/\s+/)
    .filter(Boolean)
    .every((term) => {
      const field = /^(status|task|tag):(.*)$/.exec(term);
      if (field) {
        if (field[1] === 'status') return run.status === field[2];
        if (field[1] === 'task') return (run.task ?? run.kind) === field[2];
        const [k, v] = field[2].split('=');
        return run.tags[k] !== undefined && (v === undefined || run.tags[k] === v);
      }
      const eq = term.indexOf('=');
      if (eq > 0) {
        const key = term.slice(0, eq);
        return run.params[key] !== undefined && formatParam(run.params[key]) === term.slice(eq + 1);
      }
      const text = `${run.id} ${run.name} ${Object.entries(run.tags).map(([k, v]) => `${k}=${v}`).join(' ')}`.toLowerCase();
      return text.includes(term.toLowerCase());
    });
}

function renderTable() {
  const cols = columns();
  const head = $('#runs thead tr');
  head.replaceChildren(
    el('th', {}, ''),
    ...cols.map((c) => {
      const th = el('th', { dataset: { key: c.key }, class: state.sort.key === c.key ? (state.sort.dir > 0 ? 'sorted-asc' : 'sorted-desc') : '' }, c.label);
      th.addEventListener('click', () => {
        state.sort = { key: c.key, dir: state.sort.key === c.key ? -state.sort.dir : c.key === 'id' || c.key === 'task' || c.key === 'status' ? 1 : -1 };
        renderTable();
      });
      if (c.removable) {
        th.append(
          el('span', { class: 'remove', title: 'Remove column', onclick: (e) => {
            e.stopPropagation();
            state.extraColumns = state.extraColumns.filter((k) => k !== c.key);
            renderTable();
          } }, '×'),
        );
      }
      return th;
    }),
  );
  const query = $('#filter').value;
  const sortCol = cols.find((c) => c.key === state.sort.key) ?? cols[3];
  const rows = state.runs.filter((r) => matches(r, query));
  rows.sort((a, b) => {
    const [x, y] = [sortCol.value(a), sortCol.value(b)];
    if (x === null || y === null) return x === y ? 0 : x === null ? 1 : -1;
    return (x < y ? -1 : x > y ? 1 : 0) * state.sort.dir;
  });
  $('#runs tbody').replaceChildren(
    ...rows.map((run) =>
      el(
        'tr',
        { class: state.selected.has(run.id) ? 'selected' : '', dataset: { run: run.id } },
        el('td', {}, el('input', { type: 'checkbox', class: 'select', ...(state.selected.has(run.id) ? { checked: '' } : {}), onchange: (e) => toggle(run.id, e.target.checked) })),
        ...cols.map((c) => {
          if (c.key === 'id') return el('td', {}, el('a', { href: `#/run/${encodeURIComponent(run.id)}` }, run.id));
          if (c.key === 'status') return el('td', { class: `status-${run.status}` }, run.status);
          return el('td', { class: c.num ? 'num' : '' }, c.show ? c.show(run) : (c.value(run) ?? '-'));
        }),
      ),
    ),
  );
  $('#count').textContent = `${rows.length} of ${state.runs.length} runs`;
  const chooser = $('#add-column');
  const paramKeys = [...new Set(state.runs.flatMap((r) => Object.keys(r.params)))].sort();
  const resultKeys = [...new Set(state.runs.flatMap((r) => Object.keys(r.results)))].sort();
  chooser.replaceChildren(
    el('option', { value: '' }, '—'),
    el('optgroup', { label: 'results' }, ...resultKeys.map((k) => el('option', { value: `result:${k}` }, k))),
    el('optgroup', { label: 'params' }, ...paramKeys.map((k) => el('option', { value: `param:${k}` }, k))),
  );
}

function toggle(id, on) {
  if (on) state.selected.add(id);
  else state.selected.delete(id);
  renderTable();
  renderSelection();
}

async function renderSelection() {
  const ids = [...state.selected];
  $('#selection').hidden = ids.length === 0;
  if (ids.length === 0) return;
  for (const tab of ['curves', 'diff', 'parallel']) $(`#tab-${tab}`).hidden = tab !== state.tab;
  for (const button of document.querySelectorAll('.tabs button')) button.classList.toggle('active', button.dataset.tab === state.tab);
  if (state.tab === 'curves') await renderCurves(ids);
  else if (state.tab === 'diff') await renderDiff(ids);
  else await renderParallel(ids);
}

function chart(id) {
  const node = document.getElementById(id);
  if (!charts[id] || charts[id].getDom() !== node) charts[id] = echarts.init(node);
  charts[id].resize();
  return charts[id];
}

async function renderCurves(ids) {
  const keySets = await Promise.all(ids.map((id) => getJson(`/api/runs/${encodeURIComponent(id)}/metrics`)));
  const keys = [...new Set(keySets.flatMap((k) => k.keys))].sort();
  if (!keys.includes(state.metric)) state.metric = keys.includes('train/loss') ? 'train/loss' : keys[0];
  $('#metric').replaceChildren(...keys.map((k) => el('option', { value: k, ...(k === state.metric ? { selected: '' } : {}) }, k)));
  const series = await Promise.all(
    ids.map(async (id) => {
      const { points } = await getJson(`/api/runs/${encodeURIComponent(id)}/series?key=${encodeURIComponent(state.metric)}`);
      return { name: id, type: 'line', showSymbol: points.length < 30, connectNulls: false, data: points.map((p) => [p.step, p.value]) };
    }),
  );
  chart('curves').setOption(
    {
      animation: false,
      title: { text: state.metric, left: 'center', textStyle: { fontSize: 13 } },
      tooltip: { trigger: 'axis' },
      legend: { type: 'scroll', bottom: 0 },
      grid: { left: 60, right: 30, top: 40, bottom: 60 },
      xAxis: { type: 'value', name: 'step', nameLocation: 'middle', nameGap: 25 },
      yAxis: { type: 'value', scale: true },
      series,
    },
    true,
  );
  document.getElementById('curves').dataset.series = String(series.length);
}

async function renderDiff(ids) {
  const only = $('#only-diff').checked;
  const comparison = await getJson(`/api/compare?${ids.map((id) => `run=${encodeURIComponent(id)}`).join('&')}${only ? '&diff=1' : ''}`);
  const table = (node, title, rows) => {
    node.replaceChildren(
      el('thead', {}, el('tr', {}, el('th', {}, title), ...comparison.runs.map((r) => el('th', {}, r.id)))),
      el('tbody', {}, ...rows.map((row) => el('tr', { dataset: { key: row.key } }, el('td', {}, row.key), ...row.display.map((v) => el('td', { class: `${row.differs ? 'differs' : ''} ${title === 'result' ? 'num' : ''}` }, v))))),
    );
  };
  table($('#diff-results'), 'result', comparison.results);
  table($('#diff-params'), 'param', comparison.params);
}

async function renderParallel(ids) {
  const runs = ids.map((id) => state.runs.find((r) => r.id === id)).filter(Boolean);
  const resultKeys = [...new Set(runs.flatMap((r) => Object.keys(r.results)))].sort();
  if (!resultKeys.includes(state.parallelMetric)) state.parallelMetric = resultKeys[0] ?? null;
  $('#parallel-metric').replaceChildren(...resultKeys.map((k) => el('option', { value: k, ...(k === state.parallelMetric ? { selected: '' } : {}) }, k)));
  // The axes: every param whose value differs between the runs (numbers on a value axis,
  // anything else on a category axis), then the chosen metric.
  const paramKeys = [...new Set(runs.flatMap((r) => Object.keys(r.params)))].sort().filter((k) => new Set(runs.map((r) => r.params[k] ?? null)).size > 1);
  const dims = paramKeys.map((key, dim) => {
    const values = runs.map((r) => paramValue(r, key));
    const numeric = values.every((v) => typeof v === 'number');
    return numeric ? { dim, name: key } : { dim, name: key, type: 'category', data: [...new Set(values.map((v) => String(v)))] };
  });
  if (state.parallelMetric !== null) dims.push({ dim: dims.length, name: state.parallelMetric });
  const data = runs.map((r) => ({ name: r.id, value: [...paramKeys.map((k) => { const v = paramValue(r, k); return typeof v === 'number' ? v : String(v); }), ...(state.parallelMetric === null ? [] : [r.results[state.parallelMetric] ?? null])] }));
  chart('parallel').setOption(
    {
      animation: false,
      tooltip: { formatter: (p) => p.name },
      parallelAxis: dims,
      parallel: { left: 60, right: 120, top: 40, bottom: 40 },
      series: [{ type: 'parallel', lineStyle: { width: 2, opacity: 0.8 }, data }],
    },
    true,
  );
}

async function renderRun(id) {
  const view = $('#run-view');
  let run;
  try {
    run = await getJson(`/api/runs/${encodeURIComponent(id)}`);
  } catch (error) {
    view.replaceChildren(el('p', {}, error.message));
    return;
  }
  const kv = (entries, fmt = (v) => v) => el('table', {}, el('tbody', {}, ...entries.map(([k, v]) => el('tr', {}, el('td', {}, k), el('td', {}, fmt(v))))));
  view.replaceChildren(
    el('p', {}, el('a', { href: '#/' }, '← all runs')),
    el('h2', {}, run.id),
    el('p', {}, `${run.kind}${run.task ? `, ${run.task}` : ''}: `, el('span', { class: `status-${run.status}` }, run.status), run.message ? ` — ${run.message}` : '', ` · started ${iso(run.startedAt)} UTC · ${duration(run)}`, run.parentId ? ' · from ' : '', run.parentId ? el('a', { href: `#/run/${encodeURIComponent(run.parentId)}` }, run.parentId) : ''),
    el('section', {}, el('h3', {}, 'Results'), kv(Object.entries(run.results), formatResult)),
    el('section', {}, el('h3', {}, 'Tags'), kv(Object.entries(run.tags))),
    el('section', { id: 'artifacts' }, el('h3', {}, 'Artifacts'), el('ul', {}, ...run.artifacts.map((a) => el('li', {}, el('a', { href: `/api/runs/${encodeURIComponent(run.id)}/files/${a.path.split('/').map(encodeURIComponent).join('/')}`, download: '' }, a.path), ` (${a.bytes.toLocaleString()} bytes)`)))),
    el('section', { id: 'children' }, el('h3', {}, 'Evaluations and exports'), run.children.length === 0 ? el('p', {}, 'none') : el('table', {}, el('tbody', {}, ...run.children.map((c) => el('tr', {}, el('td', {}, el('a', { href: `#/run/${encodeURIComponent(c.id)}` }, c.id)), el('td', {}, c.kind), el('td', { class: `status-${c.status}` }, c.status), el('td', {}, Object.entries(c.results).slice(0, 6).map(([k, v]) => `${k} ${formatResult(v)}`).join(' · '))))))),
    el('section', {}, el('h3', {}, 'Config'), el('pre', { id: 'config' }, run.config ?? '(none)')),
    el('section', {}, el('h3', {}, 'Model card'), el('pre', { id: 'card' }, run.card ? JSON.stringify(run.card, null, 2) : '(none)')),
    el('section', {}, el('h3', {}, 'Log'), el('pre', { id: 'log' }, run.log ?? '(no train.log)')),
    el('section', {}, el('h3', {}, 'Params'), kv(Object.entries(run.params), formatParam)),
  );
}

async function refresh() {
  const { root, runs } = await getJson('/api/runs');
  state.runs = runs;
  for (const id of [...state.selected]) if (!runs.some((r) => r.id === id)) state.selected.delete(id);
  $('#root').textContent = root;
  if (state.route.startsWith('#/run/')) await renderRun(decodeURIComponent(state.route.slice(6)));
  else {
    renderTable();
    await renderSelection();
  }
}

async function route() {
  state.route = location.hash;
  const detail = state.route.startsWith('#/run/');
  $('#list-view').hidden = detail;
  $('#run-view').hidden = !detail;
  await refresh();
}

$('#filter').addEventListener('input', renderTable);
$('#add-column').addEventListener('change', (e) => {
  if (e.target.value && !state.extraColumns.includes(e.target.value)) state.extraColumns.push(e.target.value);
  renderTable();
});
for (const button of document.querySelectorAll('.tabs button')) {
  button.addEventListener('click', () => {
    state.tab = button.dataset.tab;
    renderSelection();
  });
}
$('#metric').addEventListener('change', (e) => {
  state.metric = e.target.value;
  renderSelection();
});
$('#parallel-metric').addEventListener('change', (e) => {
  state.parallelMetric = e.target.value;
  renderSelection();
});
$('#only-diff').addEventListener('change', () => renderSelection());
window.addEventListener('hashchange', route);
window.addEventListener('resize', () => Object.values(charts).forEach((c) => c.resize()));

// Live: the server says when the store changed; refresh what is on screen, at most once at a time.
let refreshing = null;
const events = new EventSource('/api/events');
events.addEventListener('hello', () => $('#live').classList.add('on'));
events.addEventListener('change', () => {
  if (refreshing) return;
  refreshing = refresh().finally(() => (refreshing = null));
});
events.onerror = () => $('#live').classList.remove('on');

route();
