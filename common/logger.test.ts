import { Writable } from 'node:stream';
import { createLogger } from './logger';

test('when a log line carries keys, tokens or passwords, then their values are redacted', () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const logger = createLogger('test', 'info', sink);

  logger.info(
    {
      req: { headers: { authorization: 'Bearer sk_live_secret' } },
      paymentMethod: { token: 'tok_secret' },
      db: { password: 'hunter2' },
      endpoint: { id: 'we_1', secret: 'whsec_secret', secrets: ['whsec_old'] },
      amountMinor: 5000,
    },
    'charging',
  );

  const line = lines.join('');
  expect(line).not.toMatch(/sk_live_secret|tok_secret|hunter2|whsec_/);
  expect(JSON.parse(line)).toMatchObject({ service: 'test', amountMinor: 5000, msg: 'charging' });
});
