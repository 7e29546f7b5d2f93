import { describe, expect, it } from 'vitest';
import { allowedAdminRoute, decisionBody } from '../../src/console/admin-proxy.js';
import { csvField } from '../../src/console/audit-routes.js';
import { isLoopbackHost, loginRefusal } from '../../src/console/login-guard.js';
import { ConsoleSessions, csrfMatches } from '../../src/console/sessions.js';
import { MAX_QUEUED_EVENTS, StreamQueue } from '../../src/console/stream-queue.js';
import { consoleNotice } from '../../src/cli/serve.js';
import { FakeClock } from '../policy/fake-clock.js';

describe('console logins', () => {
  it('a_login_secret_opens_one_session_and_is_refused_when_reused', () => {
    const s = new ConsoleSessions({ clock: new FakeClock() });
    const { secret } = s.issueLogin();
    const first = s.login(secret);
    expect(first.ok).toBe(true);
    expect(s.login(secret)).toMatchObject({ ok: false });
  });

  it('a_login_secret_expires_after_its_ttl', () => {
    const clock = new FakeClock();
    const s = new ConsoleSessions({ clock, limits: { loginTtlMs: 120_000 } });
    const { secret } = s.issueLogin();
    clock.advance(120_000);
    expect(s.login(secret)).toMatchObject({ ok: false });
  });

  it('a_guessed_or_malformed_secret_opens_nothing', () => {
    const s = new ConsoleSessions({ clock: new FakeClock() });
    s.issueLogin();
    for (const guess of ['', 'x', 'A'.repeat(43), { secret: 1 }, null, 'A'.repeat(44)]) expect(s.login(guess)).toMatchObject({ ok: false });
  });

  it('a_session_ends_when_idle_or_at_its_absolute_lifetime_and_on_logout', () => {
    const clock = new FakeClock();
    const s = new ConsoleSessions({ clock, limits: { idleMs: 1_000, sessionTtlMs: 10_000 } });
    const a = s.login(s.issueLogin().secret);
    if (!a.ok) throw new Error('login failed');
    const open = (v: { cookie: string; session: { csrf: string } }) => s.authenticate([v.cookie], v.session.csrf);
    clock.advance(999);
    expect(open(a)?.id).toBe(a.session.id);
    clock.advance(1_000);
    expect(open(a)).toBeUndefined();

    const b = s.login(s.issueLogin().secret);
    if (!b.ok) throw new Error('login failed');
    for (let i = 0; i < 11; i++) {
      clock.advance(900);
      expect(open(b)).toBeDefined();
    }
    clock.advance(900);
    expect(open(b)).toBeUndefined();

    const c = s.login(s.issueLogin().secret);
    if (!c.ok) throw new Error('login failed');
    s.end(c.session);
    expect(open(c)).toBeUndefined();
  });

  it('the_session_id_is_not_the_cookie_and_csrf_is_compared_whole', () => {
    const s = new ConsoleSessions({ clock: new FakeClock() });
    const a = s.login(s.issueLogin().secret);
    if (!a.ok) throw new Error('login failed');
    expect(a.session.id).toMatch(/^cs_[0-9a-f]{12}$/);
    expect(a.cookie).not.toContain(a.session.id);
    expect(csrfMatches(a.session, a.session.csrf)).toBe(true);
    expect(csrfMatches(a.session, undefined)).toBe(false);
    expect(csrfMatches(a.session, a.session.csrf.slice(0, -1))).toBe(false);
    expect(csrfMatches(a.session, `${a.session.csrf}x`)).toBe(false);
  });
});

describe('console sessions: cookie and token together', () => {
  it('a_cookie_without_its_session_token_opens_nothing', () => {
    const s = new ConsoleSessions({ clock: new FakeClock() });
    const a = s.login(s.issueLogin().secret);
    const b = s.login(s.issueLogin().secret);
    if (!a.ok || !b.ok) throw new Error('login failed');
    expect(s.authenticate([a.cookie], undefined)).toBeUndefined();
    expect(s.authenticate([a.cookie], '')).toBeUndefined();
    expect(s.authenticate([a.cookie], b.session.csrf)).toBeUndefined();
    expect(s.authenticate([], a.session.csrf)).toBeUndefined();
    expect(s.authenticate([a.cookie], a.session.csrf)?.id).toBe(a.session.id);
  });

  it('every_cookie_of_the_name_is_tried_so_a_tossed_one_sent_first_hides_nothing', () => {
    const s = new ConsoleSessions({ clock: new FakeClock() });
    const a = s.login(s.issueLogin().secret);
    const b = s.login(s.issueLogin().secret);
    if (!a.ok || !b.ok) throw new Error('login failed');
    expect(s.authenticate(['junk', 'A'.repeat(43), b.cookie, a.cookie], a.session.csrf)?.id).toBe(a.session.id);
  });
});

describe('console logins beyond loopback', () => {
  it('a_listener_beyond_loopback_issues_no_login_without_console_insecure', () => {
    for (const base of ['http://127.0.0.1:8931', 'http://127.1.2.3:1', 'http://localhost:8931', 'http://[::1]:8931', 'https://gw.example:443']) {
      expect(loginRefusal(base, false), base).toBeUndefined();
    }
    for (const base of ['http://192.168.1.5:8931', 'http://[fe80::1]:8931', 'http://gw.example:8931', 'http://127.0.0.1.evil.example:1']) {
      expect(loginRefusal(base, false), base).toMatch(/--console-insecure/);
      expect(loginRefusal(base, true), base).toBeUndefined();
    }
    expect(isLoopbackHost('10.0.0.1')).toBe(false);
    expect(consoleNotice('10.0.0.1', true)).toMatch(/^warning: /);
    expect(consoleNotice('10.0.0.1', false)).toMatch(/^note: .*issues no logins/);
  });
});

describe('console event streams', () => {
  it('a_stalled_stream_gets_a_resync_instead_of_an_unbounded_queue', async () => {
    const q = new StreamQueue<number>(MAX_QUEUED_EVENTS);
    expect(MAX_QUEUED_EVENTS).toBe(500);
    for (let i = 0; i < MAX_QUEUED_EVENTS; i++) q.push(i);
    expect(q.take()).toEqual({ resync: false, events: Array.from({ length: MAX_QUEUED_EVENTS }, (_, i) => i) });
    // A writer that does not keep up: the queue never holds more than its cap, and says it dropped events.
    for (let i = 0; i < 10_000; i++) {
      q.push(i);
      expect(q.size).toBeLessThanOrEqual(MAX_QUEUED_EVENTS);
    }
    expect(q.take()).toEqual({ resync: true, events: [] });
    q.push(7);
    expect(q.take()).toEqual({ resync: false, events: [7] });
    // A waiting writer wakes for an event, and at once when one is queued already.
    const woke = q.wait(60_000);
    q.push(8);
    await woke;
    await q.wait(60_000);
    expect(q.take().events).toEqual([8]);
  });
});

describe('console admin proxy', () => {
  it('passes_only_listed_admin_routes', () => {
    expect(allowedAdminRoute('GET', '/approvals')).toBe(true);
    expect(allowedAdminRoute('POST', '/approvals/ap_1/approve')).toBe(true);
    expect(allowedAdminRoute('POST', '/tools/approve')).toBe(true);
    // Not from the console: revoking tokens, re-pinning a connector, grants, logins for more consoles.
    for (const [m, p] of [['POST', '/tokens/revoke'], ['POST', '/tools/pin'], ['DELETE', '/grants/g1'], ['POST', '/console/login'], ['GET', '/approvals/../tokens'], ['POST', '/approvals']]) {
      expect(allowedAdminRoute(m as string, p as string), `${m} ${p}`).toBe(false);
    }
  });

  it('a_decision_names_the_console_session_and_a_forged_by_is_refused', () => {
    expect(JSON.parse(decisionBody('{"reason":"no"}', 'console:cs_1'))).toEqual({ reason: 'no', by: 'console:cs_1' });
    expect(JSON.parse(decisionBody('', 'console:cs_1'))).toEqual({ by: 'console:cs_1' });
    expect(() => decisionBody('{"by":"alice"}', 'console:cs_1')).toThrow(/by/);
    expect(() => decisionBody('[1]', 'console:cs_1')).toThrow(/object/);
    expect(() => decisionBody('{', 'console:cs_1')).toThrow(/JSON/);
  });
});

describe('console export', () => {
  it('csv_fields_are_quoted_and_formula_injection_is_defused', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"\nthere')).toBe('"say ""hi""\nthere"');
    expect(csvField('=HYPERLINK("http://x")')).toBe(`"'=HYPERLINK(""http://x"")"`);
    expect(csvField('+1')).toBe("'+1");
    expect(csvField('@SUM(A1)')).toBe("'@SUM(A1)");
  });
});
