import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHmac } from 'node:crypto';
import { signWebhook, verifyWebhook, WebhookVerificationError } from './signature';
import type { VerificationReason, VerifyOptions } from './signature';

const secret = 'whsec_test_0123456789abcdef';
const body = '{"eventId":"pur_1:payment.approved:1","type":"payment.approved"}';
const at = new Date('2026-12-01T12:00:00Z');
const t = Math.floor(at.getTime() / 1000);

function reasonOf(options: VerifyOptions): VerificationReason | undefined {
  try {
    verifyWebhook(options);
    return undefined;
  } catch (err) {
    if (err instanceof WebhookVerificationError) return err.reason;
    throw err;
  }
}

test('when a body is signed, then the header is t=<seconds>,v1=<HMAC-SHA256 of "t.body">', () => {
  const expected = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');

  expect(signWebhook(secret, body, t)).toBe(`t=${t},v1=${expected}`);
});

test('when the signature is good and fresh, then it verifies', () => {
  const header = signWebhook(secret, body, t);

  expect(verifyWebhook({ secret, header, body, now: at })).toBe(true);
  expect(verifyWebhook({ secret, header, body: Buffer.from(body), now: at })).toBe(true);
});

test('when the secret is wrong, then it fails with signature_mismatch', () => {
  const header = signWebhook('whsec_someone_else', body, t);

  expect(reasonOf({ secret, header, body, now: at })).toBe('signature_mismatch');
});

test('when the body was tampered with, then it fails with signature_mismatch', () => {
  const header = signWebhook(secret, body, t);

  expect(reasonOf({ secret, header, body: body.replace('approved', 'declined'), now: at })).toBe(
    'signature_mismatch',
  );
});

test('when the timestamp was changed, then it fails with signature_mismatch', () => {
  const header = signWebhook(secret, body, t).replace(`t=${t}`, `t=${t + 1}`);

  expect(reasonOf({ secret, header, body, now: at })).toBe('signature_mismatch');
});

test.each([
  ['301 s old', -301],
  ['301 s ahead', 301],
])('when the timestamp is %s, then it fails with timestamp_outside_tolerance', (_n, offset) => {
  const header = signWebhook(secret, body, t + offset);

  expect(reasonOf({ secret, header, body, now: at })).toBe('timestamp_outside_tolerance');
});

test('when the timestamp is 300 s old, then it is still inside the default tolerance', () => {
  const header = signWebhook(secret, body, t - 300);

  expect(verifyWebhook({ secret, header, body, now: at })).toBe(true);
  expect(reasonOf({ secret, header, body, now: at, toleranceSeconds: 60 })).toBe(
    'timestamp_outside_tolerance',
  );
});

test.each([
  ['missing', undefined],
  ['empty', ''],
  ['without a timestamp', 'v1=' + 'a'.repeat(64)],
  ['without a v1 value', `t=${t}`],
  ['with a short digest', `t=${t},v1=abcd`],
  ['with a non-hex digest', `t=${t},v1=${'z'.repeat(64)}`],
  ['with a non-numeric timestamp', `t=soon,v1=${'a'.repeat(64)}`],
  ['with two timestamps', `t=${t},t=${t},v1=${'a'.repeat(64)}`],
  ['of another shape', 'sha256=abc'],
])('when the header is %s, then it fails with malformed_header', (_n, header) => {
  expect(reasonOf({ secret, header, body, now: at })).toBe('malformed_header');
});

test('when no secret is given, then it fails with no_secret', () => {
  const header = signWebhook(secret, body, t);

  expect(reasonOf({ header, body, now: at })).toBe('no_secret');
  expect(reasonOf({ secrets: [], header, body, now: at })).toBe('no_secret');
});

test('when signed with two secrets, then a receiver holding either one verifies', () => {
  const header = signWebhook(['whsec_new', 'whsec_old'], body, t);

  expect(header.split(',').filter((p) => p.startsWith('v1='))).toHaveLength(2);
  expect(verifyWebhook({ secret: 'whsec_new', header, body, now: at })).toBe(true);
  expect(verifyWebhook({ secret: 'whsec_old', header, body, now: at })).toBe(true);
  expect(reasonOf({ secret: 'whsec_other', header, body, now: at })).toBe('signature_mismatch');
});

test('when the receiver holds several secrets, then any one that matches verifies', () => {
  const header = signWebhook('whsec_old', body, t);

  expect(verifyWebhook({ secrets: ['whsec_new', 'whsec_old'], header, body, now: at })).toBe(true);
});

test('when the header carries an unknown scheme beside v1, then v1 still verifies', () => {
  const header = `${signWebhook(secret, body, t)},v0=deadbeef`;

  expect(verifyWebhook({ secret, header, body, now: at })).toBe(true);
});

test('when the package is required by name, then its entry is the build of this module', () => {
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as {
    main: string;
    exports: { '.': { default: string } };
  };

  expect(pkg.main).toBe('dist/webhooks/signature.js');
  expect(pkg.exports['.'].default).toBe('./dist/webhooks/signature.js');
});
