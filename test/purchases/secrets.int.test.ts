import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { defaultPayloadConverter } from '@temporalio/common';
import type { Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { createPurchaseBody } from '../../api/purchases/request';
import { createPurchase } from '../../api/purchases/service';
import { EncryptionCodec } from '../../common/codec';
import type { JsonPayload } from '../../common/codec';
import { createLogger } from '../../common/logger';
import type { Platform } from './harness';
import { createProduct, idleStarter, post, purchaseBody, startPlatform } from './harness';
import { finalState } from './helpers';

/*
 * The card token must not be stored in clear by the engine or by the outbox. The sandbox
 * approves only its known tokens, so the test looks for `tok_visa` itself in what is stored.
 */
const TOKEN = 'tok_visa';
const ADMIN_KEY = 'sk_admin_local';

let platform: Platform;
let productId: string;
let approvedWorkflowId: string;
beforeAll(async () => {
  platform = await startPlatform();
  productId = await createProduct(platform.prisma);
  const res = await post(platform, purchaseBody(productId, TOKEN));
  const done = await finalState(platform, res.json.id as string, ['APPROVED', 'FAILED']);
  expect(done.status).toBe('APPROVED');
  const row = await platform.prisma.purchase.findUniqueOrThrow({
    where: { id: res.json.id as string },
  });
  approvedWorkflowId = row.workflowId;
});
afterAll(() => platform.close());

/** The workflow input as `temporal workflow show` (the CLI stack/stack.sh builds) prints it. */
async function shownInput(workflowId: string, ...flags: string[]) {
  const cache = process.env.GATEWAY_CACHE ?? join(homedir(), '.cache', 'gateway-payment');
  const args = ['workflow', 'show', '--workflow-id', workflowId, '--output', 'json', ...flags];
  const { stdout } = await promisify(execFile)(join(cache, 'bin', 'temporal'), [
    ...args,
    '--address',
    platform.config.TEMPORAL_ADDRESS,
    '--namespace',
    platform.config.TEMPORAL_NAMESPACE,
  ]);
  const history = JSON.parse(stdout) as {
    events: { workflowExecutionStartedEventAttributes?: { input: { payloads: JsonPayload[] } } }[];
  };
  const payload = history.events[0]?.workflowExecutionStartedEventAttributes?.input.payloads[0];
  const text = (b64 = '') => Buffer.from(b64, 'base64').toString('latin1');
  return { encoding: text(payload?.metadata.encoding), data: text(payload?.data) };
}

/** A workflow's history as Temporal serves it, undecoded: its events and their protobuf bytes. */
async function rawHistory(workflowId: string) {
  const { GetWorkflowExecutionHistoryResponse } = temporal.api.workflowservice.v1;
  const events: temporal.api.history.v1.IHistoryEvent[] = [];
  const bytes: Buffer[] = [];
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await platform.client.workflowService.getWorkflowExecutionHistory({
      namespace: platform.config.TEMPORAL_NAMESPACE,
      execution: { workflowId },
      nextPageToken,
    });
    events.push(...(page.history?.events ?? []));
    bytes.push(Buffer.from(GetWorkflowExecutionHistoryResponse.encode(page).finish()));
    nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
  } while (nextPageToken);
  return { events, bytes: Buffer.concat(bytes) };
}

test('when a purchase is approved, then its Temporal history holds no card token in clear', async () => {
  const history = await rawHistory(approvedWorkflowId);

  expect(history.bytes.includes(TOKEN)).toBe(false);
  // The input is there, and the configured codec reads the token back out of it.
  const input = history.events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads;
  const decoded = await new EncryptionCodec(platform.config).decode(input as Payload[]);
  expect(defaultPayloadConverter.fromPayload(decoded[0]!)).toMatchObject({ token: TOKEN });
});

test('when the temporal CLI uses the api codec endpoint with the admin key, then it reads the input; without the endpoint it cannot', async () => {
  const endpoint = `${platform.apiUrl}/codec`;

  const withCodec = await shownInput(
    approvedWorkflowId,
    '--codec-endpoint',
    endpoint,
    '--codec-auth',
    `Bearer ${ADMIN_KEY}`,
  );
  const without = await shownInput(approvedWorkflowId);

  expect(withCodec.encoding).toBe('json/plain');
  expect(JSON.parse(withCodec.data)).toMatchObject({ token: TOKEN });
  expect(without.encoding).toBe('binary/encrypted');
  expect(without.data).not.toContain(TOKEN);
});

test('when a purchase is accepted, then its outbox row holds no card token in clear', async () => {
  // An api that dies right after its commit: the row stays, unstarted, for its lease.
  const deps = {
    prisma: platform.prisma,
    sql: platform.sql,
    starter: idleStarter(platform.config),
    config: platform.config,
    logger: createLogger('t', 'silent'),
    search: platform.search,
  };
  const body = createPurchaseBody.parse(purchaseBody(productId, TOKEN));
  const { purchase } = await createPurchase(deps, 'm_local', randomUUID(), body);

  const row = await platform.prisma.workflowStart.findUnique({
    where: { purchaseId: purchase.id },
  });
  // Not left for a relay: a later test run has no use for it.
  await platform.prisma.workflowStart.deleteMany({ where: { purchaseId: purchase.id } });

  expect(row).not.toBeNull();
  expect(JSON.stringify(row)).not.toContain(TOKEN);
});
