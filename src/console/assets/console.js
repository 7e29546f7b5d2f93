// The Gatehouse console. Plain JavaScript, no dependencies, no build step.
// Everything an agent or an upstream can influence (tool names, arguments,
// records) is put into the page as text (textContent / text nodes), never as
// HTML: this file does not use innerHTML, insertAdjacentHTML or document.write.
// Invisible and control characters in such text (bidi overrides, zero-width
// and tag characters) are shown as visible, highlighted escapes.

const API = '/console/api';
/** The session token's header: every API request and the event stream carry it (the cookie alone opens nothing). */
const CSRF_HEADER = 'x-gatehouse-csrf';
/** Where the page keeps the session token: sessionStorage is per origin (port included) and per tab, and survives a reload. */
const TOKEN_KEY = 'gatehouse-console-token';
/** Longer string values are shown cut, with a marker saying so and a button that shows them whole. */
const LONG = 200;
/** An approval that came on screen by itself (the one before was decided, the list changed) must be seen this long before a key or button decides it. */
const SETTLE_MS = 1000;

const state = {
  csrf: '', session: '', approvals: [], selected: 0, auditCursor: null, auditQuery: '', calls: [], denials: [], source: null,
  // The approval on screen, since when, and the one the admin picked (j/k or a click); a decision in flight.
  shownId: undefined, shownAt: 0, picked: undefined, deciding: false,
  // Why the last decision on the approval on screen failed (a grant beyond the rule's limits…): { id, message }.
  approvalError: undefined,
};

// ---- Invisible and control characters ---------------------------------------
// <unsafe> This block is run by test/console/unsafe-chars.test.ts against src/terminal.ts: UNSAFE_CLASS must be its
// UNSAFE_CLASS character for character, and the escapes the same as escapeText / jsonForTerminal there.
const UNSAFE_CLASS =
  '\\p{Cc}\\p{Cf}\\p{Zl}\\p{Zp}\\p{Cs}\\u034f\\u115f\\u1160\\u17b4\\u17b5\\u180b-\\u180f\\u3164\\ufe00-\\ufe0f\\uffa0\\u{e0100}-\\u{e01ef}';
const UNSAFE_ALL = new RegExp(`[${UNSAFE_CLASS}]`, 'gu');
const NAMED = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** One character's visible escape, as the terminal shows it. */
function escapeChar(c) {
  if (Object.hasOwn(NAMED, c)) return NAMED[c];
  const cp = c.codePointAt(0) ?? 0;
  if (cp < 0x100) return `\\x${cp.toString(16).padStart(2, '0')}`;
  if (cp < 0x10000) return `\\u${cp.toString(16).padStart(4, '0')}`;
  return `\\u{${cp.toString(16)}}`;
}

/** Inside JSON text: `\\uXXXX` per UTF-16 unit, which parses back to the same string. */
function escapeInJson(c) {
  let out = '';
  for (let i = 0; i < c.length; i++) out += `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`;
  return out;
}

/**
 * `s` cut into plain text and escapes: [text, isEscape] pairs. mode 'text' escapes every unsafe character,
 * 'lines' lets newlines through, 'json' is for JSON text (JSON.stringify has escaped C0 already).
 */
function unsafeParts(s, mode = 'text') {
  const parts = [];
  let last = 0;
  for (const m of s.matchAll(UNSAFE_ALL)) {
    if (mode === 'lines' && m[0] === '\n') continue;
    if (m.index > last) parts.push([s.slice(last, m.index), false]);
    parts.push([mode === 'json' ? escapeInJson(m[0]) : escapeChar(m[0]), true]);
    last = m.index + m[0].length;
  }
  if (last < s.length) parts.push([s.slice(last), false]);
  return parts;
}
// </unsafe>

/** Text nodes for `s`, each unsafe character a highlighted escape that says what it is. */
function safeNodes(s, mode = 'text') {
  return unsafeParts(s, mode).map(([t, isEscape]) => {
    if (!isEscape) return document.createTextNode(t);
    const span = document.createElement('span');
    span.className = 'esc';
    span.title = 'an invisible or control character, shown escaped';
    span.textContent = t;
    return span;
  });
}

/** Sets `node`'s text to `s`, unsafe characters shown escaped (use instead of textContent for anything not our own). */
function setText(node, s, mode = 'text') {
  node.replaceChildren(...safeNodes(String(s), mode));
}

// ---- DOM helpers: text only ------------------------------------------------
const $ = (sel) => document.querySelector(sel);

/** An element with attributes and children; a string child becomes a text node. */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null) e.append(...(typeof c === 'string' || typeof c === 'number' ? safeNodes(String(c)) : [c]));
  return e;
}

const text = (v) => (v === undefined || v === null || v === '' ? '-' : String(v));

function fillTable(table, rows) {
  const body = table.tBodies[0];
  body.replaceChildren(...rows);
  if (rows.length === 0) body.append(el('tr', {}, el('td', { colspan: table.tHead.rows[0].cells.length, class: 'muted' }, 'none')));
}

function toast(message) {
  const t = el('div', {}, message);
  $('#toast').append(t);
  setTimeout(() => t.remove(), 6000);
}

/**
 * JSON, pretty-printed as text nodes. A long string is shown cut with
 * "… N more characters" and a button that shows it whole: nothing is ever
 * cut without saying so.
 */
function jsonView(value) {
  const pre = el('pre', { class: 'json' });
  const write = (v, indent) => {
    const pad = '  '.repeat(indent);
    if (Array.isArray(v)) {
      if (v.length === 0) return pre.append('[]');
      pre.append('[\n');
      v.forEach((x, i) => {
        pre.append(pad + '  ');
        write(x, indent + 1);
        pre.append(i < v.length - 1 ? ',\n' : '\n');
      });
      pre.append(pad + ']');
    } else if (v !== null && typeof v === 'object') {
      const keys = Object.keys(v);
      if (keys.length === 0) return pre.append('{}');
      pre.append('{\n');
      keys.forEach((k, i) => {
        pre.append(pad + '  ', ...safeNodes(JSON.stringify(k), 'json'), ': ');
        write(v[k], indent + 1);
        pre.append(i < keys.length - 1 ? ',\n' : '\n');
      });
      pre.append(pad + '}');
    } else if (typeof v === 'string' && v.length > LONG) {
      const full = JSON.stringify(v);
      // Cut by code point, so no escape of a surrogate pair is split.
      const head = String.fromCodePoint(...[...full].slice(0, LONG).map((c) => c.codePointAt(0)));
      const span = el('span', {}, ...safeNodes(head, 'json'));
      const cut = el('span', { class: 'cut' }, `… ${full.length - head.length} more characters`);
      const more = el('button', { type: 'button', class: 'more', 'aria-expanded': 'false' }, 'show all');
      more.addEventListener('click', () => {
        const open = more.getAttribute('aria-expanded') === 'true';
        setText(span, open ? head : full, 'json');
        cut.hidden = !open;
        more.textContent = open ? 'show all' : 'show less';
        more.setAttribute('aria-expanded', String(!open));
      });
      pre.append(span, cut, more);
    } else {
      pre.append(...safeNodes(JSON.stringify(v) ?? 'undefined', 'json'));
    }
  };
  write(value, 0);
  return pre;
}

function facts(pairs) {
  return el('dl', { class: 'facts' }, pairs.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v instanceof Node ? v : text(v))]));
}

const effect = (e) => el('span', { class: `effect-${e}` }, text(e));

// ---- API --------------------------------------------------------------------
const ENDED = 'Your console session has ended. Run gatehouse console for a new link.';

/** A request to the console's API: the session token on every one, reads included. */
async function apiFetch(method, path, body) {
  const headers = { accept: 'application/json', [CSRF_HEADER]: state.csrf };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(API + path, { method, headers, credentials: 'same-origin', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  if (res.status === 401 && path !== '/session') {
    showLogin(ENDED);
    throw new Error('not logged in');
  }
  return res;
}

async function api(method, path, body) {
  const res = await apiFetch(method, path, method === 'GET' ? undefined : (body ?? {}));
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(json?.error?.message ?? `HTTP ${res.status}`);
  return json;
}

// ---- Login -------------------------------------------------------------------
function showLogin(message) {
  state.source?.abort();
  state.source = null;
  state.csrf = '';
  sessionStorage.removeItem(TOKEN_KEY);
  document.querySelectorAll('[data-page]').forEach((s) => (s.hidden = true));
  $('#page-login').hidden = false;
  $('#logout').hidden = true;
  $('#who').textContent = '';
  if (message) setText($('#login-message'), message);
}

async function start() {
  initTheme();
  // The one-time secret is in the fragment: take it out of the address bar and history at once, then trade it.
  const m = /^#login=([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (m) history.replaceState(null, '', location.pathname);
  try {
    if (m) {
      // The only answer that carries the session token: kept in this tab's sessionStorage, sent as a header from now on.
      const s = await api('POST', '/session', { secret: m[1] });
      state.csrf = s.csrf;
      sessionStorage.setItem(TOKEN_KEY, s.csrf);
      state.session = s.session;
    } else {
      state.csrf = sessionStorage.getItem(TOKEN_KEY) ?? '';
      if (state.csrf === '') throw new Error('no session in this tab');
      state.session = (await api('GET', '/session')).session;
    }
  } catch (e) {
    const fresh = state.csrf === '' && !m;
    showLogin(m ? `Login failed: ${e.message}` : fresh ? 'This tab has no console session: each tab needs its own login link. Run gatehouse console on the gateway\'s machine for one.' : ENDED);
    return;
  }
  $('#page-login').hidden = true;
  $('#who').textContent = `session ${state.session}`;
  $('#logout').hidden = false;
  wire();
  void connectEvents();
  route();
}

// ---- Theme -------------------------------------------------------------------
function initTheme() {
  const saved = localStorage.getItem('gatehouse-theme');
  if (saved === 'dark' || saved === 'light') document.documentElement.dataset.theme = saved;
  $('#theme').addEventListener('click', () => {
    const dark = document.documentElement.dataset.theme ? document.documentElement.dataset.theme === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches;
    const next = dark ? 'light' : 'dark';
    document.documentElement.dataset.theme = next;
    localStorage.setItem('gatehouse-theme', next);
  });
}

// ---- Routing -----------------------------------------------------------------
const PAGES = { live: loadLive, approvals: loadApprovals, audit: () => searchAudit(true), tools: loadTools, policy: loadPolicy };

function current() {
  const p = location.hash.slice(1);
  return Object.hasOwn(PAGES, p) ? p : 'live';
}

function route() {
  const page = current();
  document.querySelectorAll('[data-page]').forEach((s) => (s.hidden = s.id !== `page-${page}`));
  document.querySelectorAll('[data-nav]').forEach((a) => (a.dataset.nav === page ? a.setAttribute('aria-current', 'page') : a.removeAttribute('aria-current')));
  PAGES[page]().catch((e) => toast(e.message));
}

// ---- Live --------------------------------------------------------------------
async function loadLive() {
  renderState(await api('GET', '/live'));
  const d = await api('GET', '/admin/audit?decision=deny&limit=10');
  state.denials = d.records;
  renderDenials();
  await refreshApprovals();
}

function renderState(s) {
  const st = s.status;
  $('#live-gateway').textContent = `${st.version} (pid ${st.pid})`;
  $('#live-sessions-total').textContent = String(s.sessions.total);
  setPending(st.pendingApprovals);
  fillTable($('#live-connectors'), st.connectors.map((c) => el('tr', {}, el('td', {}, c.name), el('td', {}, c.kind), el('td', {}, c.status.state), el('td', {}, text(c.tools)), el('td', {}, text(c.quarantined)), el('td', {}, text(c.sandbox)), el('td', {}, text(c.status.reason ?? c.status.fix)))));
  fillTable($('#live-agents'), s.sessions.agents.map((a) => el('tr', {}, el('td', {}, a.agent), el('td', {}, a.via === 'sandbox' ? `sandbox ${a.sandbox ?? ''}` : 'token'), el('td', {}, String(a.sessions)), el('td', {}, String(a.busy)), el('td', {}, a.lastSeen))));
  fillTable($('#live-sandboxes'), s.sandboxes.map((b) => el('tr', {}, el('td', {}, b.id), el('td', {}, b.agent), el('td', {}, b.url))));
}

function renderDenials() {
  fillTable($('#live-denials'), state.denials.slice(0, 10).map((r) => el('tr', {}, el('td', {}, r.time), el('td', {}, text(r.agent)), el('td', {}, text(r.tool)), el('td', {}, text(r.rule)), el('td', {}, text(r.outcome)))));
}

function setPending(n) {
  $('#live-pending').textContent = String(n);
  const b = $('#pending-count');
  b.textContent = String(n);
  if (n === 0) b.dataset.zero = '';
  else delete b.dataset.zero;
}

function onAuditRecord(r) {
  if (r.event === 'tools/call') state.calls.push(Date.now());
  if (r.decision === 'deny') {
    state.denials.unshift(r);
    state.denials.length = Math.min(state.denials.length, 10);
    renderDenials();
  }
}

setInterval(() => {
  const since = Date.now() - 10_000;
  state.calls = state.calls.filter((t) => t >= since);
  const rate = $('#live-rate');
  if (rate) rate.textContent = (state.calls.length / 10).toFixed(1);
  if (current() === 'approvals') renderTimeLeft();
}, 1000);

// ---- Approvals ---------------------------------------------------------------
async function refreshApprovals() {
  const r = await api('GET', '/admin/approvals');
  const selectedId = state.approvals[state.selected]?.id;
  state.approvals = r.pending;
  const keep = state.approvals.findIndex((a) => a.id === selectedId);
  state.selected = keep >= 0 ? keep : Math.min(state.selected, Math.max(0, state.approvals.length - 1));
  setPending(state.approvals.length);
  renderApprovals();
}

async function loadApprovals() {
  await refreshApprovals();
}

function renderApprovals() {
  const list = $('#approvals-list');
  list.replaceChildren(
    ...state.approvals.map((a, i) =>
      el('li', { role: 'option', id: `approval-${i}`, 'data-id': a.id, 'aria-selected': String(i === state.selected), onclick: () => select(i) }, el('strong', {}, a.tool), ' ', el('span', { class: 'muted' }, `by ${a.agent}`)),
    ),
  );
  if (state.approvals.length > 0) list.setAttribute('aria-activedescendant', `approval-${state.selected}`);
  renderApproval();
}

/** The admin picks an approval (j/k, a click): keys and buttons may decide it at once. */
function select(i) {
  if (state.approvals.length === 0) return;
  state.selected = Math.max(0, Math.min(i, state.approvals.length - 1));
  state.picked = state.approvals[state.selected]?.id;
  renderApprovals();
}

function timeLeft(a) {
  const s = Math.max(0, Math.round((Date.parse(a.expiresAt) - Date.now()) / 1000));
  return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
}

function renderTimeLeft() {
  const a = state.approvals[state.selected];
  const t = $('#approval-left');
  if (a && t) t.textContent = timeLeft(a);
}

// <duration> This block is run by test/console/page-copies.test.ts against src/config/duration.ts's formatDuration.
/** "3600000" → "1h", "90000" → "1m30s": src/config/duration.ts's formatDuration, for the rule's grant bound. */
function formatDuration(ms) {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  let rest = Math.round(ms / 1000);
  let out = '';
  for (const [unit, secs] of [['d', 86_400], ['h', 3_600], ['m', 60], ['s', 1]]) {
    const n = Math.floor(rest / secs);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * secs;
  }
  return out || '0s';
}
// </duration>

function renderApproval() {
  const box = $('#approval-detail');
  const a = state.approvals[state.selected];
  // The same approval drawn again (another call came or went): keep what the admin typed.
  const typed = a !== undefined && a.id === state.shownId ? Object.fromEntries(['ttl', 'uses', 'reason'].map((n) => [n, box.querySelector(`input[name="${n}"]`)?.value])) : {};
  if (a?.id !== state.shownId) {
    state.shownId = a?.id;
    state.shownAt = performance.now();
  }
  if (!a) return box.replaceChildren(el('p', { class: 'muted' }, 'Nothing waits for a decision.'));
  const g = a.grantLimit;
  const ttl = el('input', { name: 'ttl', value: typed.ttl ?? (g ? formatDuration(Math.min(10 * 60_000, g.ttlMs)) : ''), size: 6, 'aria-label': 'grant time to live' });
  const uses = el('input', { name: 'uses', type: 'number', min: 1, max: g ? g.maxUses : 1, value: typed.uses ?? (g ? Math.min(10, g.maxUses) : 1), size: 5, 'aria-label': 'grant uses' });
  const reason = el('input', { id: 'deny-reason', name: 'reason', size: 30, maxlength: 500, placeholder: 'reason (optional)', 'aria-label': 'reason for denying', value: typed.reason });
  const error = state.approvalError?.id === a.id ? state.approvalError.message : '';
  box.replaceChildren(
    el('h3', {}, a.tool),
    facts([
      ['Approval', a.id],
      ['Agent', a.agent],
      ['Connector', a.connector],
      ['Upstream tool', a.upstreamTool],
      ['Rule', a.ruleId ?? '(default)'],
      ['Message', a.message],
      ['Requested', a.requestedAt],
      ['Time left', el('span', { id: 'approval-left' }, timeLeft(a))],
      ...(a.grantCovers ? [['A grant covers', a.grantCovers]] : []),
    ]),
    el('div', { class: 'muted' }, 'Arguments (complete, exact JSON):'),
    jsonView(a.args),
    el(
      'div',
      { class: 'actions' },
      el('button', { type: 'button', class: 'primary', id: 'approve-once', onclick: () => decide('approve') }, 'Approve once (a)'),
      g
        ? [
            el('label', {}, `TTL (max ${formatDuration(g.ttlMs)})`, ttl),
            el('label', {}, `Uses (max ${g.maxUses})`, uses),
            // exact: a grant beyond the rule's limits is refused (and said here), never quietly cut down.
            el('button', { type: 'button', id: 'approve-grant', onclick: () => decide('approve', { grant: { ttl: ttl.value.trim(), uses: Number(uses.value) }, exact: true }) }, 'Approve with grant'),
          ]
        : el('span', { class: 'muted' }, 'This rule allows no grants.'),
      reason,
      el('button', { type: 'button', class: 'danger', id: 'deny', onclick: () => decide('deny', reason.value ? { reason: reason.value } : {}) }, 'Deny (d)'),
    ),
    el('p', { id: 'approval-error', class: 'error', role: 'alert' }, error),
  );
}

/**
 * Decides the approval on screen. One that came on screen by itself (after a decision, when the list
 * changed) must have been seen for SETTLE_MS, or picked, first: a held key or a double click must not
 * decide a call nobody looked at. One decision at a time.
 */
async function decide(action, body = {}) {
  const a = state.approvals[state.selected];
  if (!a || state.deciding) return;
  if (a.id !== state.picked && performance.now() - state.shownAt < SETTLE_MS) {
    toast(`Not ${action === 'approve' ? 'approved' : 'denied'}: this call just came on screen. Read it first (or pick it with j/k or a click).`);
    return;
  }
  state.deciding = true;
  state.approvalError = undefined;
  try {
    await api('POST', `/admin/approvals/${encodeURIComponent(a.id)}/${action}`, body);
    toast(`${action === 'approve' ? 'Approved' : 'Denied'}: ${a.tool} (${a.agent})`);
  } catch (e) {
    // Said next to the buttons until the next decision (a toast alone goes away).
    state.approvalError = { id: a.id, message: `Could not ${action}: ${e.message}` };
    toast(state.approvalError.message);
  } finally {
    state.deciding = false;
  }
  await refreshApprovals();
}

document.addEventListener('keydown', (e) => {
  if (current() !== 'approvals' || e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target;
  if (t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement) return;
  if (!['j', 'k', 'a', 'd'].includes(e.key)) return;
  e.preventDefault();
  // A held key repeats: it moves or decides once, never on into the next call.
  if (e.repeat) return;
  if (e.key === 'j') select(state.selected + 1);
  else if (e.key === 'k') select(state.selected - 1);
  else if (e.key === 'a') void decide('approve');
  else {
    const r = $('#deny-reason')?.value;
    void decide('deny', r ? { reason: r } : {});
  }
});

function notify(id) {
  if (!$('#notify')?.checked || !('Notification' in window) || Notification.permission !== 'granted') return;
  api('GET', '/admin/approvals').then((r) => {
    const a = r.pending.find((p) => p.id === id);
    if (a) new Notification('Gatehouse: a call waits for approval', { body: `${a.agent}: ${a.tool}` });
  }, () => undefined);
}

// ---- Audit ---------------------------------------------------------------
function auditQuery() {
  const params = new URLSearchParams();
  for (const [k, v] of new FormData($('#audit-form'))) if (typeof v === 'string' && v.trim() !== '') params.set(k, v.trim());
  return params;
}

async function searchAudit(fresh) {
  // A newer search supersedes one still in flight: its answer is dropped, not appended (opening the page and
  // submitting the form at once would otherwise show both result sets in one table).
  const gen = fresh ? (state.auditGen = (state.auditGen ?? 0) + 1) : state.auditGen;
  if (fresh) {
    state.auditQuery = auditQuery().toString();
    state.auditCursor = null;
    $('#audit-table').tBodies[0].replaceChildren();
  }
  const params = new URLSearchParams(state.auditQuery);
  params.set('limit', '50');
  if (state.auditCursor) params.set('cursor', state.auditCursor);
  $('#audit-error').textContent = '';
  let page;
  try {
    page = await api('GET', `/admin/audit?${params}`);
  } catch (e) {
    if (gen === state.auditGen) setText($('#audit-error'), e.message);
    return;
  }
  if (gen !== state.auditGen) return;
  const body = $('#audit-table').tBodies[0];
  for (const r of page.records) {
    const row = el(
      'tr',
      { class: 'clickable', tabindex: 0, 'data-seq': r.seq },
      el('td', {}, String(r.seq)), el('td', {}, r.time), el('td', {}, r.event), el('td', {}, text(r.agent)), el('td', {}, text(r.tool)), el('td', {}, text(r.decision)), el('td', {}, text(r.rule)), el('td', {}, text(r.outcome ?? r.callStatus)),
    );
    const open = () => showRecord(r, row);
    row.addEventListener('click', open);
    row.addEventListener('keydown', (e) => e.key === 'Enter' && open());
    body.append(row);
  }
  if (fresh && page.records.length === 0) body.append(el('tr', {}, el('td', { colspan: 8, class: 'muted' }, 'no matching records')));
  state.auditCursor = page.nextCursor;
  $('#audit-more').hidden = !page.more;
}

function showRecord(r, row) {
  document.querySelectorAll('#audit-table tr.selected').forEach((x) => x.classList.remove('selected'));
  row.classList.add('selected');
  $('#audit-detail').replaceChildren(
    el('h3', {}, `Record ${r.seq}`),
    facts([['Event', r.event], ['Time', r.time], ['Chain position', `seq ${r.seq}`], ['Previous hash', r.prev], ['Hash', r.hash]]),
    jsonView(r),
  );
}

async function verifyChain() {
  const out = $('#verify-result');
  out.textContent = 'verifying…';
  try {
    const v = await api('GET', '/audit/verify');
    const cp = v.lastCheckpoint ? `last checkpoint at seq ${v.lastCheckpoint.seq} (${v.lastCheckpoint.time}), ${v.unsealed} records after it` : 'no checkpoint yet';
    const sig = v.signaturesChecked ? 'signatures checked' : 'signatures not checked (no key)';
    setText(out, `${v.ok ? 'Chain OK' : 'Chain INVALID'}: ${v.records} records (seq ${text(v.firstSeq)}..${text(v.lastSeq)}); ${cp}; ${sig}` + (v.problems.length ? `; first problem: ${v.problems[0].file}:${v.problems[0].line} ${v.problems[0].kind}: ${v.problems[0].message}` : ''));
    out.className = v.ok ? 'effect-allow' : 'error';
  } catch (e) {
    setText(out, e.message);
    out.className = 'error';
  }
}

/**
 * Downloads the current filter's export. A fetch (not a link) so the request carries the session token;
 * the file is handed to the browser as a blob.
 */
async function exportAudit(format) {
  const q = state.auditQuery ? `&${state.auditQuery}` : '';
  try {
    const res = await apiFetch('GET', `/audit/export?format=${format}${q}`);
    if (!res.ok) throw new Error((await res.json().catch(() => ({})))?.error?.message ?? `HTTP ${res.status}`);
    const name = /filename="([\w.-]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? `gatehouse-audit.${format}`;
    const url = URL.createObjectURL(await res.blob());
    const a = el('a', { href: url, download: name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (e) {
    setText($('#audit-error'), `Export failed: ${e.message}`);
  }
}

// ---- Tools ----------------------------------------------------------------
async function loadTools() {
  const pins = await api('GET', '/admin/tools');
  fillTable(
    $('#pins-table'),
    pins.tools.map((p) => {
      const waiting = p.state !== 'pinned' && !p.served;
      const buttons = [el('button', { type: 'button', onclick: () => showDiff(p) }, 'Diff')];
      if (p.state !== 'pinned') buttons.push(el('button', { type: 'button', class: 'primary', onclick: () => approveTool(p) }, 'Approve'));
      return el('tr', {}, el('td', {}, p.connector), el('td', {}, p.tool), el('td', {}, waiting ? `${p.state} (quarantined)` : p.state), el('td', {}, p.served ? 'yes' : 'no'), el('td', {}, p.reasons.join('; ')), el('td', {}, buttons));
    }),
  );
  const agent = new FormData($('#tools-form')).get('agent');
  if (typeof agent === 'string' && agent !== '') await explainTools(agent);
  else fillTable($('#tools-table'), []);
}

async function explainTools(agent) {
  const r = await api('GET', `/tools/explain?agent=${encodeURIComponent(agent)}`);
  // Rule by rule, as policy explain gives them: every rule that matches, in order, the decisive one marked.
  const rules = (t) =>
    t.rules.length === 0
      ? el('span', { class: 'muted' }, 'none: the policy default')
      : el('ul', { class: 'rules' }, t.rules.map((x) => el('li', {}, `${x.id}: ${x.effect}${x.decisive ? ' (decisive)' : ''} (${x.file}:${x.line}) ${x.reason}`)));
  fillTable($('#tools-table'), r.tools.map((t) => el('tr', {}, el('td', {}, t.name), el('td', {}, t.connector), el('td', {}, effect(t.decision.effect)), el('td', {}, t.decision.ruleId ?? '(default)'), el('td', {}, t.decision.message), el('td', {}, rules(t)))));
  fillTable($('#unexposed-table'), r.notExposed.map((p) => el('tr', {}, el('td', {}, p.connector), el('td', {}, p.tool), el('td', {}, p.message))));
}

async function showDiff(p) {
  const d = await api('GET', `/admin/tools/${encodeURIComponent(p.connector)}/${encodeURIComponent(p.tool)}/diff`);
  const pre = $('#pin-diff');
  setText(pre, d.diff + (d.findings.length ? `\n\nScreening findings:\n${d.findings.map((f) => `${f.kind} in ${f.where}: ${f.excerpt}`).join('\n')}` : ''), 'lines');
  pre.hidden = false;
}

async function approveTool(p) {
  try {
    await api('POST', '/admin/tools/approve', { connector: p.connector, tool: p.tool });
    toast(`Approved tool ${p.connector}/${p.tool}`);
  } catch (e) {
    toast(e.message);
  }
  await loadTools();
}

// ---- Policy -----------------------------------------------------------------
async function loadPolicy() {
  const p = await api('GET', '/policy');
  const lr = p.lastReload;
  $('#policy-summary').replaceWith(
    Object.assign(facts([
      ['Folder', p.dir],
      ['Default', p.default],
      ['Rules', String(p.rules)],
      ['Digest', p.digest],
      ['Last reload', lr.initial ? `loaded at start (${lr.time})` : `${lr.ok ? 'applied' : 'REJECTED (the previous policy stays)'} at ${lr.time}${lr.changed?.length ? `: ${lr.changed.join(', ')}` : ''}`],
      ...(lr.error ? [['Reload error', lr.error]] : []),
      ...p.warnings.map((w) => ['Warning', w]),
    ]), { id: 'policy-summary' }),
  );
  fillTable($('#policy-files'), p.files.map((f) => el('tr', {}, el('td', {}, f.file), el('td', {}, String(f.rules)))));
}

async function explainCall(form) {
  const data = new FormData(form);
  $('#explain-error').textContent = '';
  let args;
  try {
    args = JSON.parse(String(data.get('args') || '{}'));
  } catch (e) {
    setText($('#explain-error'), `Arguments: not valid JSON (${e.message})`);
    return;
  }
  const body = { agent: String(data.get('agent')), tool: String(data.get('tool')), args };
  const time = String(data.get('time') || '').trim();
  if (time && time !== 'now') body.time = time;
  try {
    const r = await api('POST', '/policy/explain', body);
    const d = r.decision;
    const rules = el('table', {}, el('thead', {}, el('tr', {}, ['Rule', 'Effect', 'Matched', 'Where', 'Reason'].map((h) => el('th', {}, h)))), el('tbody'));
    fillTable(rules, r.rules.map((x) => el('tr', {}, el('td', {}, x.id), el('td', {}, effect(x.effect)), el('td', {}, x.decisive ? 'yes *' : x.matched ? 'yes' : 'no'), el('td', {}, `${x.file}:${x.line}`), el('td', {}, x.reason))));
    $('#explain-result').replaceChildren(el('p', {}, 'Decision: ', effect(d.effect), ` by ${d.ruleId === null ? 'the policy default' : `rule "${d.ruleId}"`}: ${d.message}`), rules);
  } catch (e) {
    setText($('#explain-error'), e.message);
  }
}

// ---- Live updates ---------------------------------------------------------------
// A fetch stream, not EventSource: EventSource cannot send the session token's header.

/** Reads server-sent events (the WHATWG event-stream format) from `body`, calling `on(event, data)` for each. */
async function readEvents(body, on) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let event = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line === '' || line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const v = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = v;
        else if (field === 'data') data.push(v);
      }
      if (data.length > 0) on(event, data.join('\n'));
    }
  }
}

function onEvent(event, data) {
  const conn = $('#conn');
  if (event === 'hello') {
    conn.textContent = 'live';
    conn.dataset.state = 'live';
  } else if (event === 'approval') {
    const ev = JSON.parse(data);
    if (ev.type === 'requested') notify(ev.id);
    refreshApprovals().catch(() => undefined);
  } else if (event === 'audit') {
    onAuditRecord(JSON.parse(data));
  } else if (event === 'state') {
    renderState(JSON.parse(data));
  } else if (event === 'resync') {
    // This tab fell behind and events were dropped: load what the page shows afresh.
    route();
  }
}

async function connectEvents() {
  const ctrl = new AbortController();
  state.source = ctrl;
  const conn = $('#conn');
  let delay = 1000;
  while (!ctrl.signal.aborted) {
    try {
      const res = await fetch('/console/events', { headers: { accept: 'text/event-stream', [CSRF_HEADER]: state.csrf }, credentials: 'same-origin', signal: ctrl.signal });
      if (res.status === 401) return showLogin(ENDED);
      if (res.ok && res.body) {
        await readEvents(res.body, (event, data) => {
          if (event === 'hello') delay = 1000;
          onEvent(event, data);
        });
      }
    } catch {
      // A dropped connection: try again below.
    }
    if (ctrl.signal.aborted) return;
    conn.textContent = 'reconnecting…';
    delete conn.dataset.state;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 15_000);
  }
}

function wire() {
  window.addEventListener('hashchange', route);
  $('#audit-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void searchAudit(true);
  });
  $('#audit-more').addEventListener('click', () => void searchAudit(false));
  $('#verify-button').addEventListener('click', () => void verifyChain());
  $('#export-jsonl').addEventListener('click', () => void exportAudit('jsonl'));
  $('#export-csv').addEventListener('click', () => void exportAudit('csv'));
  $('#tools-form').addEventListener('submit', (e) => {
    e.preventDefault();
    explainTools(String(new FormData(e.target).get('agent'))).catch((err) => toast(err.message));
  });
  $('#explain-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void explainCall(e.target);
  });
  $('#notify').addEventListener('change', (e) => {
    if (e.target.checked && 'Notification' in window && Notification.permission === 'default') void Notification.requestPermission();
  });
  $('#logout').addEventListener('click', async () => {
    await api('DELETE', '/session').catch(() => undefined);
    showLogin('Logged out.');
  });
}

void start();
