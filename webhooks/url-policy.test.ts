import { addressAllowed, addressKind, checkWebhookHost, parseWebhookUrl } from './url-policy';

const production = { production: true };
const development = { production: false };

test.each([
  ['127.0.0.1', 'loopback'],
  ['127.9.9.9', 'loopback'],
  ['::1', 'loopback'],
  ['10.1.2.3', 'not_public'],
  ['172.16.0.1', 'not_public'],
  ['172.31.255.255', 'not_public'],
  ['192.168.1.1', 'not_public'],
  ['169.254.169.254', 'not_public'],
  ['100.64.0.1', 'not_public'],
  ['0.0.0.0', 'not_public'],
  ['224.0.0.1', 'not_public'],
  ['fe80::1', 'not_public'],
  ['fd12:3456::1', 'not_public'],
  ['fc00::1', 'not_public'],
  ['::ffff:7f00:1', 'loopback'],
  ['::ffff:a00:1', 'not_public'],
  ['::', 'not_public'],
  ['8.8.8.8', 'public'],
  ['172.32.0.1', 'public'],
  ['2606:4700::1111', 'public'],
])('when the address is %s, then it is %s', (address, kind) => {
  expect(addressKind(address)).toBe(kind);
});

test('when outside production, then loopback alone of the non-public addresses is allowed', () => {
  expect(addressAllowed('127.0.0.1', development)).toBe(true);
  expect(addressAllowed('::1', development)).toBe(true);
  expect(addressAllowed('10.0.0.1', development)).toBe(false);
  expect(addressAllowed('127.0.0.1', production)).toBe(false);
  expect(addressAllowed('8.8.8.8', production)).toBe(true);
});

test.each([
  ['not a URL', 'hooks.example.com/x'],
  ['ftp', 'ftp://hooks.example.com/x'],
  ['javascript', 'javascript:alert(1)'],
  ['file', 'file:///etc/passwd'],
  ['credentials', 'https://user:pass@hooks.example.com/x'],
])('when the url is %s, then it is refused as invalid_webhook_url', (_n, url) => {
  const refusal = (() => {
    try {
      parseWebhookUrl(url);
    } catch (err) {
      return err;
    }
  })();

  expect(refusal).toMatchObject({ code: 'invalid_webhook_url' });
});

test.each([
  'http://10.0.0.1/x',
  'http://127.0.0.1:3000/x',
  'http://[::1]/x',
  'http://[fd00::1]/x',
  'http://169.254.169.254/latest/meta-data',
  'http://[::ffff:127.0.0.1]/x',
  'http://localhost/x',
])('when production is asked to call %s, then it is not public', async (raw) => {
  await expect(checkWebhookHost(parseWebhookUrl(raw), production)).rejects.toMatchObject({
    code: 'webhook_url_not_public',
  });
});

test('when development is asked to call loopback, then it is allowed', async () => {
  await expect(
    checkWebhookHost(parseWebhookUrl('http://127.0.0.1:9/x'), development),
  ).resolves.toBeUndefined();
  await expect(
    checkWebhookHost(parseWebhookUrl('http://localhost:9/x'), development),
  ).resolves.toBeUndefined();
});

test('when the host does not resolve, then it is refused as unresolvable', async () => {
  await expect(
    checkWebhookHost(parseWebhookUrl('https://no-such-host.invalid/x'), development),
  ).rejects.toMatchObject({ code: 'webhook_url_unresolvable' });
});
