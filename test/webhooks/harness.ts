import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { Client, Connection } from '@temporalio/client';
import { IllegalStateError } from '@temporalio/common';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { Producer } from 'kafkajs';
import { createApiApp } from '../../api/app';
import { EVENTS_TOPIC, publish } from '../../activities/events';
import { hashApiKey } from '../../common/auth';
import { dataConverterFor } from '../../common/codec';
import { loadConfig } from '../../common/config';
import type { Config } from '../../common/config';
import { createPrisma, createSqlPool } from '../../common/db';
import type { PrismaClient } from '../../common/db';
import { listen } from '../../common/http';
import { createKafka, createProducer, ensureTopics } from '../../common/kafka';
import { createLogger } from '../../common/logger';
import type { SearchEngine } from '../../search/engine';
import { createWebhookActivities } from '../../webhooks/activities';
import { startDispatcher } from '../../webhooks/dispatcher';
import type { Dispatcher } from '../../webhooks/dispatcher';
import {
  SIGNATURE_HEADER,
  verifyWebhook,
  WebhookVerificationError,
} from '../../webhooks/signature';
import { createWebhookStore } from '../../webhooks/store';
import type { WebhookStore } from '../../webhooks/store';
import { idleStarter } from '../purchases/harness';
import { eventually, TEST_NAMESPACE } from '../config';

export interface WebhookPlatform {
  config: Config;
  apiUrl: string;
  prisma: PrismaClient;
  store: WebhookStore;
  client: Client;
  /** A merchant of this test run alone, with a key of its own. */
  newMerchant(): Promise<{ merchantId: string; key: string }>;
  /** Publishes a lifecycle envelope as the purchase workflow does; returns its event id. */
  publishEvent(merchantId: string, type: string, data?: Record<string, unknown>): Promise<string>;
  call(
    key: string,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: Record<string, unknown> }>;
  close(): Promise<void>;
}

let runtimeInstalled = false;

/**
 * The webhook path in this process over the real stack: an api on port 0 (its purchase
 * routes idle), the dispatcher in a consumer group of its own starting at the topics'
 * end, and a webhooks worker on a task queue of its own in the test namespace.
 */
export async function startWebhookPlatform(
  overrides: Record<string, string> = {},
): Promise<WebhookPlatform> {
  if (!runtimeInstalled) {
    runtimeInstalled = true;
    // Failed attempts are what these tests make; the SDK would warn of each one. A test
    // that started the purchase platform first has installed the runtime already.
    try {
      Runtime.install({ logger: new DefaultLogger('ERROR') });
    } catch (err) {
      if (!(err instanceof IllegalStateError)) throw err;
    }
  }
  const suffix = randomUUID().slice(0, 8);
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    TEMPORAL_NAMESPACE: TEST_NAMESPACE,
    WEBHOOKS_TASK_QUEUE: `test-webhooks-${suffix}`,
    WEBHOOK_CONSUMER_GROUP: `test-webhooks-${suffix}`,
    // The shared topics hold every earlier run's events; this group needs only its own.
    WEBHOOK_CONSUMER_FROM: 'latest',
    WEBHOOK_RETRY_INITIAL_MS: '200',
    WEBHOOK_RETRY_MAX_INTERVAL_MS: '1000',
    ...overrides,
  });
  const logger = createLogger('test-webhooks', 'error');
  const prisma = createPrisma(config.DATABASE_URL, 10);
  const sql = createSqlPool(config.DATABASE_URL, 2);
  const store = createWebhookStore({ prisma, config });
  const kafka = createKafka(config.KAFKA_BROKERS, `test-webhooks-${suffix}`);
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin);
  await admin.disconnect();
  const producer: Producer = createProducer(kafka);
  await producer.connect();

  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  const client = new Client({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    dataConverter: dataConverterFor(config),
  });
  const workerConnection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const worker = await Worker.create({
    connection: workerConnection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.WEBHOOKS_TASK_QUEUE,
    dataConverter: dataConverterFor(config),
    workflowsPath: require.resolve('../../workflows/webhooks'),
    activities: createWebhookActivities({ store, config, logger }),
    maxConcurrentActivityTaskExecutions: config.WEBHOOK_ACTIVITY_SLOTS,
    shutdownGraceTime: '1 second',
  });
  const running = worker.run();
  let dispatcher: Dispatcher | undefined;
  try {
    dispatcher = await startDispatcher({
      kafka,
      store,
      prisma,
      workflows: client.workflow,
      config,
      logger,
    });
    await dispatcher.ready;
  } catch (err) {
    worker.shutdown();
    await running;
    throw err;
  }

  // Purchases are not exercised here; their routes get stand-ins that are never called.
  const search = {} as Pick<SearchEngine, 'searchPurchases'>;
  const api = await listen(
    createApiApp({
      prisma,
      sql,
      starter: idleStarter(config),
      config,
      logger,
      search,
      workflows: client.workflow,
    }),
    0,
  );
  const apiUrl = `http://127.0.0.1:${api.port}`;
  const merchants: string[] = [];

  return {
    config,
    apiUrl,
    prisma,
    store,
    client,
    async newMerchant() {
      const merchantId = `m_wh_${randomBytes(6).toString('hex')}`;
      const key = `sk_wh_${randomBytes(12).toString('hex')}`;
      await prisma.merchant.create({ data: { id: merchantId, name: merchantId } });
      await prisma.apiKey.create({
        data: { keyHash: hashApiKey(key), role: 'merchant', merchantId },
      });
      merchants.push(merchantId);
      return { merchantId, key };
    },
    async publishEvent(merchantId, type, data = {}) {
      const purchaseId = `pur_${randomBytes(16).toString('hex')}`;
      await publish(producer, EVENTS_TOPIC, {
        type,
        attempt: 1,
        occurredAt: new Date().toISOString(),
        purchaseId,
        merchantId,
        workflowId: `purchase:${purchaseId}`,
        runId: randomUUID(),
        data,
      });
      return `${purchaseId}:${type}:1`;
    },
    call: (key, method, path, body) => callApi(apiUrl, key, method, path, body),
    async close() {
      await api.close();
      await dispatcher?.stop();
      worker.shutdown();
      await running;
      await workerConnection.close();
      await connection.close();
      await producer.disconnect();
      // The endpoints go, so nothing in the shared database points at a closed receiver.
      await prisma.webhookEndpoint.deleteMany({ where: { merchantId: { in: merchants } } });
      await prisma.$disconnect();
      await sql.end();
    },
  };
}

export async function callApi(
  apiUrl: string,
  key: string,
  method: string,
  path: string,
  body?: unknown,
  raw?: string,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = { authorization: `Bearer ${key}` };
  if (body !== undefined || raw !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${apiUrl}${path}`, {
    method,
    headers,
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  /** true, or why verifyWebhook refused it under the receiver's secrets. */
  verified: true | string;
  /** Whether each of the receiver's secrets on its own verifies the request. */
  verifiedBy: boolean[];
  at: number;
}

export interface Receiver {
  url: string;
  received: Received[];
  /** The secrets the receiver checks with; set once the endpoint is created. */
  secrets: string[];
  close(): Promise<void>;
}

/**
 * A real HTTP receiver on 127.0.0.1 that verifies every request with the exported
 * verifyWebhook. `answer` picks the status of the n-th request (from 1), or 'hang' to
 * never answer.
 */
export async function startReceiver(
  answer: (n: number) => number | 'hang' = () => 200,
): Promise<Receiver> {
  const received: Received[] = [];
  const receiver = { secrets: [] as string[] };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const header = req.headers[SIGNATURE_HEADER.toLowerCase()] as string | undefined;
      const check = (secrets: string[]): true | string => {
        try {
          return verifyWebhook({ secrets, header, body });
        } catch (err) {
          if (err instanceof WebhookVerificationError) return err.reason;
          throw err;
        }
      };
      received.push({
        headers: req.headers,
        body,
        verified: check(receiver.secrets),
        verifiedBy: receiver.secrets.map((s) => check([s]) === true),
        at: Date.now(),
      });
      const status = answer(received.length);
      if (status === 'hang') return;
      res.writeHead(status, { 'content-type': 'text/plain' }).end(`answered ${status}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    get secrets() {
      return receiver.secrets;
    },
    set secrets(value: string[]) {
      receiver.secrets = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** What a delivered body holds. */
export const payloadOf = (r: Received) => JSON.parse(r.body) as Record<string, unknown>;

/** Waits until the receiver has taken `n` requests; returns them. */
export const untilReceived = (r: Receiver, n: number, timeoutMs?: number): Promise<Received[]> =>
  eventually(() => Promise.resolve(r.received.length >= n ? r.received : undefined), timeoutMs);
