// nodewarden operator's console (docs/console.md). Plain ES module, no
// dependencies: everything on this page comes from the control API
// (/api/v1/...) with the operator's token, which lives in this tab's
// sessionStorage and travels only in the Authorization header.
// Every text from the API is set with textContent, never as HTML.

const TOKEN_KEY = 'nodewarden.console.token';
const POLL_MS = 1500;
const LEDGER_ROWS = 200;

const STATES = [
  { id: 'healthy', label: 'healthy', glyph: '' },
  { id: 'cordoned-by-nodewarden', label: 'cordoned by nodewarden', glyph: 'N' },
  { id: 'cordoned-by-person', label: 'cordoned by a person', glyph: 'P' },
  { id: 'not-ready', label: 'NotReady', glyph: '×' },
  { id: 'denied', label: 'denied by the guard', glyph: '!' },
];
const OUTCOMES = [
  { id: 'executed', glyph: '✔' },
  { id: 'dry-run', glyph: '◌' },
  { id: 'denied', glyph: '⊘' },
  { id: 'suppressed', glyph: '–' },
  { id: 'failed', glyph: '✖' },
];

const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`console: #${id} missing`);
  return el;
};

/** Element factory: h('td', {class: 'x'}, 'text', child, ...); strings become text nodes. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  role: null,
  name: null,
  timer: null,
  /** true: GET /api/v1/incidents exists (whoami's features); false: derive open pages from the ledger. */
  incidentsApi: false,
  nodesApi: true,
  cells: new Map(),
  ruleRows: new Map(),
  ruleIds: '',
  groups: '',
  selected: null,
  toggleFor: null,
};

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, init = {}) {
  const headers = { accept: 'application/json', authorization: `Bearer ${state.token ?? ''}` };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { ...init, headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer' });
  let body;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (res.status === 401) {
    signOut('That token was not accepted. Sign in again.');
    throw new ApiError(401, 'unauthorized');
  }
  if (!res.ok) {
    const msg = body?.error ? `${body.error.message}${body.error.problems?.length ? ': ' + body.error.problems.map((p) => `${p.path} ${p.message}`).join('; ') : ''}` : `HTTP ${res.status}`;
    throw new ApiError(res.status, msg);
  }
  return body;
}

// ---------------------------------------------------------------- sign in / out

function showLogin(message) {
  $('main').hidden = true;
  $('logout').hidden = true;
  $('who').textContent = '';
  $('conn').textContent = '';
  $('login').hidden = false;
  $('login-error').textContent = message ?? '';
  $('token').value = '';
  $('token').focus();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.role = null;
  if (state.timer !== null) clearTimeout(state.timer);
  state.timer = null;
  showLogin(message);
}

async function signIn(token) {
  state.token = token;
  let me;
  try {
    me = await api('/api/v1/whoami');
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) showLogin(`Cannot reach the control API: ${err.message}`);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  state.role = me.role;
  state.name = me.name;
  state.incidentsApi = me.features?.incidents === true;
  state.nodesApi = me.features?.nodes !== false;
  $('login').hidden = true;
  $('main').hidden = false;
  $('logout').hidden = false;
  $('who').textContent = `signed in as ${me.name} (${me.role === 'admin' ? 'admin' : 'read-only'})`;
  document.body.classList.toggle('is-admin', me.role === 'admin');
  for (const el of document.querySelectorAll('.admin-col')) el.hidden = me.role !== 'admin';
  await refresh();
}

// ---------------------------------------------------------------- rendering

const fmtTime = (iso) => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toISOString().slice(11, 19);
};
const fmtDate = (ms) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + 'Z';
const targetText = (t) => (t ? (t.namespace ? `${t.kind}/${t.namespace}/${t.name}` : `${t.kind}/${t.name}`) : '');
const stateOf = (id) => STATES.find((s) => s.id === id) ?? STATES[0];
const decisionText = (d) => (d ? `last decision: ${d.outcome} ${d.action} by rule ${d.rule}${d.guard ? ` (guard: ${d.guard})` : ''} at ${fmtTime(d.ts)} — ${d.reason}` : 'no decision in the recent ledger');

function renderGuard(g) {
  const flags = $('flags');
  flags.replaceChildren();
  if (g.paused) {
    flags.append(h('p', { class: 'flag flag-paused', role: 'status' }, h('span', { class: 'flag-icon', 'aria-hidden': 'true' }, '❚❚'), h('strong', {}, 'PAUSED'), ` by ${g.paused.by} at ${fmtDate(g.paused.at)} — ${g.paused.reason}. Cordons, uncordons and rollbacks are denied; pages still flow.`));
  } else {
    flags.append(h('p', { class: 'flag flag-running' }, h('span', { class: 'flag-icon', 'aria-hidden': 'true' }, '▶'), h('strong', {}, 'acting'), ' (not paused)'));
  }
  flags.append(g.dryRun ? h('p', { class: 'flag flag-dry' }, h('span', { class: 'flag-icon', 'aria-hidden': 'true' }, '◌'), h('strong', {}, 'DRY-RUN'), ': decides and records, changes nothing') : h('p', { class: 'flag' }, 'dry-run off'));
  flags.append(h('p', { class: 'flag flag-time' }, `engine time ${fmtDate(g.at)}`));

  const f = g.fleet;
  $('fleet-budget').replaceChildren(budgetBar('Fleet budget', f, true));

  const br = $('breakers');
  br.replaceChildren(h('h3', {}, 'Breakers and rate limits'));
  const ul = h('ul', { class: 'chips' });
  for (const b of g.breakers ?? []) {
    const open = b.state !== 'closed';
    ul.append(h('li', { class: `chip ${open ? 'chip-bad' : ''}` }, h('span', { 'aria-hidden': 'true' }, open ? '⚠ ' : '● '), `${b.action}: breaker ${b.state}${b.failures ? `, ${b.failures} failures` : ''}${b.openUntil ? ` until ${fmtTime(new Date(b.openUntil).toISOString())}` : ''}`));
  }
  for (const r of g.rateLimits ?? []) ul.append(h('li', { class: `chip ${r.remaining === 0 ? 'chip-bad' : ''}` }, `${r.action}: ${r.used}/${r.limit} per ${Math.round(r.windowMs / 60000)} min`));
  if (!ul.childElementCount) ul.append(h('li', { class: 'chip' }, 'no breakers tripped'));
  br.append(ul);

  const admin = state.role === 'admin';
  $('pause-form').hidden = !admin || Boolean(g.paused);
  $('resume').hidden = !admin || !g.paused;
}

function budgetBar(label, b, big) {
  // tainted GPUs of schedulable nodes count N/G of a node (docs/gpu-scope.md)
  const gpu = b.gpuWeight ?? 0;
  const used = Math.round((b.unavailable + b.reserved + gpu) * 100) / 100;
  const pct = (n) => `${Math.min(100, b.limit > 0 ? (n / b.limit) * 100 : 100)}%`;
  const full = used >= b.limit;
  const bar = h('div', { class: `bar ${full ? 'bar-full' : ''}`, role: 'img', 'aria-label': `${label}: ${used} of ${b.limit} allowed unavailable nodes used (${b.total} nodes)` });
  const fill = h('span', { class: 'bar-fill' });
  fill.style.width = pct(used);
  bar.append(fill);
  return h(
    'div',
    { class: `budget ${big ? 'budget-big' : ''}` },
    h('span', { class: 'budget-label' }, label),
    bar,
    h('span', { class: 'budget-num' }, h('strong', {}, `${used}/${b.limit}`), ` unavailable (of ${b.total})${full ? ' — FULL' : ''}${b.reserved ? `, ${b.reserved} reserved` : ''}${gpu ? `, ${gpu.toFixed(2)} in tainted GPUs` : ''}`),
  );
}

function renderLegend(counts) {
  const legend = $('legend');
  legend.replaceChildren(
    ...STATES.map((s) => h('li', {}, h('span', { class: `cell cell-legend s-${s.id}`, 'aria-hidden': 'true' }, s.glyph), ` ${s.label} `, h('strong', { class: 'count' }, String(counts[s.id] ?? 0)))),
  );
}

function showDetail(n) {
  state.selected = n.name;
  $('node-detail').textContent = `${n.name} (${n.group ?? 'no group'}): ${stateOf(n.state).label}. ${decisionText(n.lastDecision)}`;
}

function renderNodes(nodes, guard) {
  const groups = new Map();
  for (const n of nodes) {
    const key = n.group ?? '(no group)';
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(n);
  }
  const shape = [...groups].map(([g, ns]) => `${g}:${ns.map((n) => n.name).join(',')}`).join('|');
  const strip = $('strip');
  if (shape !== state.groups) {
    // The set of nodes changed: build the strip again (otherwise cells update in place, keeping focus).
    state.groups = shape;
    state.cells.clear();
    strip.replaceChildren();
    for (const [g, ns] of groups) {
      const cells = h('div', { class: 'cells', role: 'list', 'aria-label': `pool ${g}` });
      for (const n of ns) {
        const c = h('button', { type: 'button', class: 'cell', role: 'listitem', 'data-node': n.name });
        c.addEventListener('focus', () => showDetail(c.nodeData));
        c.addEventListener('mouseenter', () => showDetail(c.nodeData));
        c.addEventListener('click', () => {
          showDetail(c.nodeData);
          $('f-node').value = n.name;
          refreshSoon();
        });
        state.cells.set(n.name, c);
        cells.append(c);
      }
      strip.append(h('div', { class: 'group', 'data-group': g }, h('div', { class: 'group-head' }, h('h3', {}, g), h('div', { class: 'group-budget' })), cells));
    }
    $('node-names').replaceChildren(...nodes.map((n) => h('option', { value: n.name })));
  }
  const counts = {};
  for (const n of nodes) {
    counts[n.state] = (counts[n.state] ?? 0) + 1;
    const c = state.cells.get(n.name);
    if (!c) continue;
    c.nodeData = n;
    const s = stateOf(n.state);
    c.className = `cell s-${s.id}`;
    c.textContent = s.glyph;
    const text = `${n.name}: ${s.label}. ${decisionText(n.lastDecision)}`;
    c.title = text;
    c.setAttribute('aria-label', text);
    if (state.selected === n.name) showDetail(n);
  }
  renderLegend(counts);
  for (const el of strip.querySelectorAll('.group')) {
    const g = el.getAttribute('data-group');
    const b = (guard.groups ?? []).find((x) => x.scope.endsWith(`=${g}`));
    const slot = el.querySelector('.group-budget');
    if (slot) slot.replaceChildren(b ? budgetBar(b.scope, b, false) : h('span', { class: 'note' }, 'no group budget'));
  }
}

function renderRules(rules) {
  const body = $('rule-rows');
  const ids = rules.map((r) => r.id).join(',');
  const admin = state.role === 'admin';
  if (ids !== state.ruleIds) {
    state.ruleIds = ids;
    state.ruleRows.clear();
    body.replaceChildren();
    const sel = $('f-rule');
    const keep = sel.value;
    sel.replaceChildren(h('option', { value: '' }, 'any'), ...rules.map((r) => h('option', { value: r.id }, r.id)));
    sel.value = keep;
    for (const r of rules) {
      const btn = h('button', { type: 'button', class: 'admin small' });
      btn.addEventListener('click', () => openToggle(btn.ruleData));
      const row = h('tr', {}, h('th', { scope: 'row' }, h('span', { class: 'rule-id' }), h('span', { class: 'rule-sev' })), h('td', { class: 'rule-state' }), h('td', { class: 'admin-col' }, btn));
      state.ruleRows.set(r.id, { row, btn });
      body.append(row);
    }
  }
  for (const r of rules) {
    const entry = state.ruleRows.get(r.id);
    if (!entry) continue;
    const { row, btn } = entry;
    btn.ruleData = r;
    row.querySelector('.rule-id').textContent = r.id;
    row.querySelector('.rule-id').title = r.description;
    row.querySelector('.rule-sev').textContent = ` ${r.severity}`;
    const t = r.toggle;
    const st = row.querySelector('.rule-state');
    const note = t
      ? h('span', { class: 'toggle-note' }, ` ${t.enabled ? 'enabled' : 'disabled'} by ${t.by}: ${t.reason}${t.expiresAt ? ` — until ${fmtDate(t.expiresAt)}` : ' — no expiry'}`)
      : r.fileEnabled
        ? null
        : h('span', { class: 'toggle-note' }, ' off in the rule file');
    st.replaceChildren(...[h('span', { class: `pill ${r.effective ? 'pill-on' : 'pill-off'}` }, r.effective ? '● on' : '○ off'), note].filter(Boolean));
    btn.textContent = r.effective ? 'Disable…' : 'Enable…';
    btn.setAttribute('aria-label', `${r.effective ? 'Disable' : 'Enable'} rule ${r.id}`);
    row.querySelector('.admin-col').hidden = !admin;
  }
}

function outcomeCell(o) {
  const g = OUTCOMES.find((x) => x.id === o);
  return h('td', { class: `outcome o-${o}` }, h('span', { 'aria-hidden': 'true' }, g ? `${g.glyph} ` : ''), o);
}

function renderLedger(records, problem) {
  const rows = records.map((e) => {
    if (e.kind) {
      // a toggle or pause audit record
      return h('tr', { class: 'audit' }, h('td', {}, fmtTime(e.ts)), h('td', { class: 'outcome o-audit' }, h('span', { 'aria-hidden': 'true' }, '✎ '), 'audit'), h('td', {}, e.kind.replace(/^rule\./, 'rule ')), h('td', {}, e.rule ?? ''), h('td', {}, e.rule ?? ''), h('td', {}, ''), h('td', {}, `${e.by ?? ''}: ${e.reason ?? ''}${e.expiresAt ? ` (until ${fmtDate(e.expiresAt)})` : ''}`));
    }
    return h('tr', { class: `r-${e.outcome}` }, h('td', {}, fmtTime(e.ts)), outcomeCell(e.outcome), h('td', {}, e.action), h('td', { class: 'target' }, targetText(e.target)), h('td', {}, e.rule), h('td', {}, e.guard ?? ''), h('td', { class: 'reason' }, e.reason));
  });
  if (rows.length === 0) rows.push(h('tr', {}, h('td', { colspan: '7', class: problem ? 'error' : 'note' }, problem ? `the filter was refused: ${problem}` : 'no ledger records match')));
  $('ledger-rows').replaceChildren(...rows);
}

/** Open pages from the ledger: page records by dedupKey with no later resolve (oldest first in, newest first out). */
function openPagesFromLedger(records) {
  const open = new Map();
  for (const e of [...records].reverse()) {
    if (e.kind || !e.dedupKey) continue;
    if (e.action === 'page' && (e.outcome === 'executed' || e.outcome === 'dry-run')) {
      const inc = open.get(e.dedupKey) ?? { key: e.dedupKey, title: e.reason, severity: e.severity, since: e.ts, members: new Set() };
      inc.title = e.reason;
      inc.members.add(targetText(e.target));
      for (const n of Array.isArray(e.details?.nodes) ? e.details.nodes : []) inc.members.add(`Node/${n}`);
      open.set(e.dedupKey, inc);
    } else if (e.action === 'resolve' && e.outcome === 'executed') open.delete(e.dedupKey);
  }
  return [...open.values()].reverse().map((i) => ({ ...i, members: [...i.members] }));
}

/**
 * An incident's members as display lines: the ledger-derived list is an array;
 * GET /api/v1/incidents gives a map keyed by node ({state, since, facts}).
 */
function memberList(members) {
  if (Array.isArray(members)) return members.map(memberText);
  if (members && typeof members === 'object') {
    return Object.entries(members).map(([node, m]) => {
      const facts = m && Array.isArray(m.facts) && m.facts.length > 0 ? `: ${m.facts.join('; ')}` : '';
      const st = m && typeof m.state === 'string' ? ` (${m.state})` : '';
      return `${node}${st}${facts}`;
    });
  }
  return [];
}

function memberText(m) {
  if (typeof m === 'string') return m;
  if (m && typeof m === 'object') return m.target ? targetText(m.target) : (m.name ?? m.node ?? JSON.stringify(m));
  return String(m);
}

function renderIncidents(list, source) {
  $('incidents-source').textContent = source;
  $('incidents-h').textContent = `Open incidents (${list.length})`;
  // Incidents spanning several targets (a group, a denial batch) first.
  const weight = (i) => {
    const ms = memberList(i.members);
    return ms.length + (ms.some((m) => /^(Group|Fleet)\//.test(m)) ? 1000 : 0);
  };
  list = [...list].sort((a, b) => weight(b) - weight(a));
  const ul = $('incident-list');
  if (list.length === 0) {
    ul.replaceChildren(h('li', { class: 'note' }, 'none open'));
    return;
  }
  ul.replaceChildren(
    ...list.map((i) => {
      const members = memberList(i.members);
      return h(
        'li',
        { class: `incident ${weight(i) > 1 ? 'incident-group' : ''}` },
        h('p', { class: 'title', title: i.title ?? i.summary ?? '' }, i.severity ? h('span', { class: 'pill pill-sev' }, i.severity) : null, ' ', h('strong', {}, i.title ?? i.summary ?? i.key ?? i.id ?? i.dedupKey)),
        h('p', { class: 'note' }, `${i.key ?? i.dedupKey ?? i.id ?? ''}${i.since ?? i.openedAt ? ` — open since ${fmtTime(i.since ?? i.openedAt)}` : ''}`),
        members.length > 1
          ? h('details', {}, h('summary', {}, `${members.length} members`), h('ul', { class: 'members' }, ...members.map((m) => h('li', {}, m))))
          : members.length === 1
            ? h('p', { class: 'note' }, `member: ${members[0]}`)
            : null,
      );
    }),
  );
}

async function incidents() {
  if (state.incidentsApi) {
    const r = await api('/api/v1/incidents');
    return { list: Array.isArray(r.incidents) ? r.incidents.filter((i) => (i.state ?? i.status ?? 'open') !== 'resolved') : [], source: 'from GET /api/v1/incidents' };
  }
  const r = await api(`/api/v1/ledger?limit=1000`);
  return { list: openPagesFromLedger(r.records), source: 'open pages from the ledger, grouped by dedup key (this engine has no incidents endpoint)' };
}

// ---------------------------------------------------------------- polling

function ledgerQuery() {
  const p = new URLSearchParams({ limit: String(LEDGER_ROWS) });
  const rule = $('f-rule').value;
  const node = $('f-node').value.trim();
  const outcome = $('f-outcome').value;
  if (rule) p.set('rule', rule);
  if (node) p.set('node', node);
  if (outcome) p.set('outcome', outcome);
  return `/api/v1/ledger?${p}`;
}

async function refresh() {
  if (state.timer !== null) clearTimeout(state.timer);
  state.timer = null;
  if (!state.token) return;
  try {
    const [guard, nodes, rules, ledger, inc] = await Promise.all([
      api('/api/v1/guard'),
      state.nodesApi ? api('/api/v1/nodes') : Promise.resolve({ nodes: [] }),
      api('/api/v1/rules'),
      api(ledgerQuery()).catch((err) => {
        if (err instanceof ApiError && err.status === 400) return { records: [], problem: err.message };
        throw err;
      }),
      incidents(),
    ]);
    renderGuard(guard);
    renderNodes(nodes.nodes, guard);
    renderRules(rules.rules);
    renderLedger(ledger.records, ledger.problem);
    renderIncidents(inc.list, inc.source);
    $('conn').textContent = `live — updated ${new Date().toLocaleTimeString()}`;
    $('conn').classList.remove('stale');
    document.body.dataset.loaded = 'true';
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    $('conn').textContent = `cannot reach the control API: ${err.message} (retrying)`;
    $('conn').classList.add('stale');
  }
  if (state.token) state.timer = setTimeout(() => void refresh(), POLL_MS);
}

function refreshSoon() {
  void refresh();
}

// ---------------------------------------------------------------- admin actions (the same calls `ctl` makes)

async function act(path, body, errorEl) {
  errorEl.textContent = '';
  try {
    await api(path, { method: 'POST', body: JSON.stringify(body) });
    await refresh();
    return true;
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) errorEl.textContent = `Not done: ${err.message}`;
    return false;
  }
}

function openToggle(rule) {
  if (!rule) return;
  state.toggleFor = rule;
  const disable = rule.effective;
  $('toggle-h').textContent = `${disable ? 'Disable' : 'Enable'} rule ${rule.id}`;
  $('toggle-cmd').textContent = `nodewarden ctl rules ${disable ? 'disable' : 'enable'} ${rule.id} --reason … --ttl …`;
  $('toggle-ok').textContent = disable ? 'Disable' : 'Enable';
  $('toggle-reason').value = '';
  $('toggle-ttl').value = '1h';
  $('toggle-error').textContent = '';
  $('toggle-dialog').showModal();
  $('toggle-reason').focus();
}

function wire() {
  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const token = $('token').value.trim();
    $('token').value = '';
    void signIn(token);
  });
  $('logout').addEventListener('click', () => signOut('Signed out.'));
  for (const id of ['f-rule', 'f-outcome']) $(id).addEventListener('change', refreshSoon);
  $('f-node').addEventListener('change', refreshSoon);
  $('filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    refreshSoon();
  });
  $('f-outcome').append(...OUTCOMES.map((o) => h('option', { value: o.id }, o.id)));
  $('pause-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const reason = $('pause-reason').value.trim();
    if (!reason) return;
    void act('/api/v1/pause', { reason }, $('action-error')).then((ok) => {
      if (ok) $('pause-reason').value = '';
    });
  });
  $('resume').addEventListener('click', () => void act('/api/v1/resume', {}, $('action-error')));
  $('toggle-cancel').addEventListener('click', () => $('toggle-dialog').close());
  $('toggle-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const rule = state.toggleFor;
    if (!rule) return;
    const reason = $('toggle-reason').value.trim();
    const ttl = $('toggle-ttl').value.trim();
    const body = ttl ? { reason, ttl } : { reason };
    void act(`/api/v1/rules/${encodeURIComponent(rule.id)}/${rule.effective ? 'disable' : 'enable'}`, body, $('toggle-error')).then((ok) => {
      if (ok) $('toggle-dialog').close();
    });
  });
}

wire();
if (state.token) void signIn(state.token);
else showLogin();
