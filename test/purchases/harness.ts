import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { Producer } from 'kafkajs';
import { createApiApp } from '../../api/app';
import { createWorkflowStarter } from '../../api/purchases/starter';
import type { PurchaseDeps } from '../../api/purchases/service';
import { createPaymentActivities, createPurchaseActivities } from '../../activities';
import { SandboxProvider } from '../../activities/provider/sandbox';
import { dataConverterFor, EncryptionCodec, sealJson } from '../../common/codec';
import { loadConfig } from '../../common/config';
import { TEST_NAMESPACE } from '../config';
import type { Config } from '../../common/config';
import { createPrisma, createSqlPool } from '../../common/db';
import type { PrismaClient, SqlPool } from '../../common/db';
import { createKafka, createProducer, ensureTopics } from '../../common/kafka';
import { listen } from '../../common/http';
import { createLogger } from '../../common/logger';
import { seedLocal } from '../../ops/seed';
import { createSandboxApp } from '../../provider-sandbox/app';
import type { SearchEngine } from '../../search/engine';
import { createOpenSearchClient, createOpenSearchEngine } from '../../search/opensearch';

export interface Platform {
  config: Config;
  apiUrl: string;
  sandboxUrl: string;
  prisma: PrismaClient;
  sql: SqlPool;
  client: Client;
  search: SearchEngine;
  /** Stops the payment worker, as a crash or a deploy would. */
  stopPaymentWorker: () => Promise<void>;
  startPaymentWorker: () => void;
  stopPurchasesWorker: () => Promise<void>;
  startPurchasesWorker: () => void;
  /** Takes the provider off the network and back, keeping its ledger. */
  stopSandbox: () => Promise<void>;
  startSandbox: () => Promise<void>;
  close: () => Promise<void>;
}

/**
 * The whole purchase path in this process, over the real stack: api and sandbox on
 * port 0, both workers on task queues of their own so nothing else picks up the work.
 * With `services: false` only the sandbox and the clients run here, for tests that run
 * the api and the workers as processes of their own; `apiUrl` is then empty.
 */
export async function startPlatform(
  overrides: Record<string, string> = {},
  options: { paymentWorker?: boolean; purchasesWorker?: boolean; services?: boolean } = {},
): Promise<Platform> {
  const services = options.services !== false;
  const logger = createLogger('test', 'error');
  installQuietRuntime();
  const sandboxApp = createSandboxApp(logger, { timeoutAnswerMs: 4000 });
  let sandbox = await listen(sandboxApp, 0);
  const sandboxPort = sandbox.port;
  const sandboxUrl = `http://127.0.0.1:${sandboxPort}`;
  const suffix = randomUUID().slice(0, 8);
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    PROVIDER_URL: sandboxUrl,
    PURCHASES_TASK_QUEUE: `test-purchases-${suffix}`,
    PAYMENTS_TASK_QUEUE: `test-payments-${suffix}`,
    PAYMENT_RETRY_INITIAL_MS: '100',
    PAYMENT_RETRY_MAX_INTERVAL_MS: '400',
    PAYMENT_RETRY_MAX_ATTEMPTS: '4',
    PROVIDER_TIMEOUT_MS: '1000',
    TEMPORAL_NAMESPACE: TEST_NAMESPACE,
    ...overrides,
  });
  const prisma = createPrisma(config.DATABASE_URL, 10);
  const sql = createSqlPool(config.DATABASE_URL, 10);
  await seedLocal(prisma);
  const kafka = createKafka(config.KAFKA_BROKERS, 'test');
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin);
  await admin.disconnect();
  const producer: Producer = createProducer(kafka);
  await producer.connect();

  const workerConnection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const purchasesWorker = stoppable(() =>
    Worker.create({
      connection: workerConnection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue: config.PURCHASES_TASK_QUEUE,
      dataConverter: dataConverterFor(config),
      workflowsPath: require.resolve('../../workflows'),
      activities: createPurchaseActivities({ prisma, sql, producer, logger }),
    }),
  );
  const provider = new SandboxProvider(sandboxUrl, config.PROVIDER_TIMEOUT_MS);
  const paymentWorker = stoppable(() =>
    Worker.create({
      connection: workerConnection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue: config.PAYMENTS_TASK_QUEUE,
      dataConverter: dataConverterFor(config),
      activities: createPaymentActivities({ provider }),
    }),
  );
  if (services && options.purchasesWorker !== false) purchasesWorker.start();
  if (services && options.paymentWorker !== false) paymentWorker.start();
  let sandboxUp = true;

  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  const client = new Client({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    dataConverter: dataConverterFor(config),
  });
  const search = createOpenSearchEngine(createOpenSearchClient(config.OPENSEARCH_URL));
  // Its relay sweeps the outbox, so it too runs only with the services.
  const starter = services
    ? createWorkflowStarter({ prisma, sql, workflows: client.workflow, connection, config, logger })
    : undefined;
  await starter?.ready();
  const api = starter
    ? await listen(
        createApiApp({ prisma, sql, starter, config, logger, search, workflows: client.workflow }),
        0,
      )
    : undefined;

  return {
    config,
    apiUrl: api ? `http://127.0.0.1:${api.port}` : '',
    sandboxUrl,
    prisma,
    sql,
    client,
    search,
    stopPaymentWorker: paymentWorker.stop,
    startPaymentWorker: paymentWorker.start,
    stopPurchasesWorker: purchasesWorker.stop,
    startPurchasesWorker: purchasesWorker.start,
    stopSandbox: async () => {
      sandbox.server.closeAllConnections();
      await sandbox.close();
      sandboxUp = false;
    },
    startSandbox: async () => {
      sandbox = await listen(sandboxApp, sandboxPort);
      sandboxUp = true;
    },
    close: async () => {
      await api?.close();
      await starter?.close();
      await purchasesWorker.stop();
      await paymentWorker.stop();
      await workerConnection.close();
      await connection.close();
      await producer.disconnect();
      await search.close();
      await prisma.$disconnect();
      await sql.end();
      if (sandboxUp) await sandbox.close();
    },
  };
}

/** A worker a test may stop and start again, as a crash or a deploy would. */
function stoppable(create: () => Promise<Worker>): {
  start: () => void;
  stop: () => Promise<void>;
} {
  let worker: Promise<Worker> | undefined;
  let run: Promise<void> = Promise.resolve();
  return {
    start: () => {
      worker = create();
      run = worker.then((w) => w.run());
    },
    stop: async () => {
      if (!worker) return;
      (await worker).shutdown();
      await run;
      worker = undefined;
    },
  };
}

export async function createProduct(
  prisma: PrismaClient,
  fields: { priceMinor?: number; stock?: number; currency?: string } = {},
): Promise<string> {
  const product = await prisma.product.create({
    data: {
      sku: `t-${randomUUID()}`,
      name: 'Café especial',
      description: 'grãos torrados',
      priceMinor: fields.priceMinor ?? 2500,
      currency: fields.currency ?? 'BRL',
      stock: fields.stock ?? 100,
    },
  });
  return product.id;
}

export const MERCHANT_KEY = 'sk_test_local';
export const OTHER_MERCHANT_KEY = 'sk_test_other';

export async function post(
  platform: Platform,
  body: unknown,
  options: { key?: string | null; apiKey?: string; raw?: string; contentType?: string } = {},
): Promise<{ status: number; headers: Headers; json: Record<string, unknown> }> {
  const headers: Record<string, string> = {
    'content-type': options.contentType ?? 'application/json',
  };
  if (options.apiKey !== '') headers.authorization = `Bearer ${options.apiKey ?? MERCHANT_KEY}`;
  if (options.key !== null) headers['idempotency-key'] = options.key ?? randomUUID();
  const res = await fetch(`${platform.apiUrl}/v1/purchases`, {
    method: 'POST',
    headers,
    body: options.raw ?? JSON.stringify(body),
  });
  return {
    status: res.status,
    headers: res.headers,
    json: (await res.json()) as Record<string, unknown>,
  };
}

export async function getPurchase(
  platform: Platform,
  id: string,
  apiKey = MERCHANT_KEY,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${platform.apiUrl}/v1/purchases/${id}`, {
    headers: { authorization: `Bearer ${apiKey}` },
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

export function purchaseBody(
  productId: string,
  token = 'tok_visa',
  extra: Record<string, unknown> = {},
) {
  return {
    customerId: `cus_${randomUUID().slice(0, 8)}`,
    items: [{ productId, quantity: 2 }],
    currency: 'BRL',
    paymentMethod: { type: 'card_token', token },
    ...extra,
  };
}

let runtimeInstalled = false;
function installQuietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({ logger: new DefaultLogger('WARN') });
}

/** A starter of an api that dies right after its commit: it seals the row, starts nothing. */
export function idleStarter(config: Config): PurchaseDeps['starter'] {
  const codec = new EncryptionCodec(config);
  return {
    seal: (input) => sealJson(codec, input),
    ensureAvailable: () => undefined,
    kick: () => undefined,
  };
}
