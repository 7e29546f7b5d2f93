import { describe, expect, it } from 'vitest';
import { allowedAdminRoute, decisionBody } from '../../src/console/admin-proxy.js';
import { csvField } from '../../src/console/audit-routes.js';
import { ConsoleSessions, csrfMatches } from '../../src/console/sessions.js';
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
    clock.advance(999);
    expect(s.session(a.cookie)?.id).toBe(a.session.id);
    clock.advance(1_000);
    expect(s.session(a.cookie)).toBeUndefined();

    const b = s.login(s.issueLogin().secret);
    if (!b.ok) throw new Error('login failed');
    for (let i = 0; i < 11; i++) {
      clock.advance(900);
      expect(s.session(b.cookie)).toBeDefined();
    }
    clock.advance(900);
    expect(s.session(b.cookie)).toBeUndefined();

    const c = s.login(s.issueLogin().secret);
    if (!c.ok) throw new Error('login failed');
    expect(s.logout(c.cookie)?.id).toBe(c.session.id);
    expect(s.session(c.cookie)).toBeUndefined();
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
