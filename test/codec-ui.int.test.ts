import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';
import { codecRoutes } from '../api/codec-routes';
import { dataConverterFor } from '../common/codec';
import { loadConfig } from '../common/config';
import { createPrisma } from '../common/db';
import type { PrismaClient } from '../common/db';
import { createHttpApp, listen } from '../common/http';
import { createLogger } from '../common/logger';
import { seedLocal } from '../ops/seed';
import * as activities from './fixtures/greeting-activities';
import { eventually } from './config';

/*
 * The operator's path in a real browser, against a throwaway dev server of its own (the
 * stack's server is shared): sign in once at /codec/login, turn on the UI's codec with
 * cross-origin credentials, and the workflow's input shows decrypted.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TEMPORAL = `${process.env.GATEWAY_CACHE ?? `${homedir()}/.cache/gateway-payment`}/bin/temporal`;
const ADMIN_KEY = 'sk_admin_local';

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });

let temporal: ChildProcess;
let dir: string;
let prisma: PrismaClient;
let browser: Browser;
let closeApi: () => Promise<void>;
let apiUrl: string;
let uiUrl: string;
let workflowId: string;
const customerId = `cus_codec_ui_${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'codec-ui-'));
  const [port, uiPort] = [await freePort(), await freePort()];
  uiUrl = `http://127.0.0.1:${uiPort}`;
  temporal = spawn(
    TEMPORAL,
    [
      ...['server', 'start-dev', '--db-filename', join(dir, 'temporal.db')],
      ...['--ip', '127.0.0.1', '--port', String(port), '--ui-port', String(uiPort)],
      ...['--namespace', 'default', '--log-level', 'error'],
    ],
    { stdio: 'ignore' },
  );

  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    TEMPORAL_ADDRESS: `127.0.0.1:${port}`,
    TEMPORAL_NAMESPACE: 'default',
    CODEC_CORS_ORIGINS: uiUrl,
  });
  prisma = createPrisma(config.DATABASE_URL, 2);
  await seedLocal(prisma);
  const api = await listen(
    createHttpApp(createLogger('test', 'silent'), (a) => {
      a.use('/codec', codecRoutes({ prisma, config }));
    }),
    0,
  );
  apiUrl = `http://127.0.0.1:${api.port}`;
  closeApi = api.close;

  const workerConnection = await eventually(
    () => NativeConnection.connect({ address: config.TEMPORAL_ADDRESS }),
    30000,
    250,
  );
  const worker = await Worker.create({
    connection: workerConnection,
    namespace: 'default',
    taskQueue: 'codec-ui',
    dataConverter: dataConverterFor(config),
    workflowsPath: require.resolve('./fixtures/greeting-workflow'),
    activities,
  });
  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  const client = new Client({ connection, dataConverter: dataConverterFor(config) });
  workflowId = `codec-ui-${randomUUID()}`;
  await worker.runUntil(
    client.workflow.execute('greeting', { taskQueue: 'codec-ui', workflowId, args: [customerId] }),
  );
  await connection.close();
  await workerConnection.close();

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  await eventually(() => fetch(uiUrl).then((r) => (r.ok ? true : undefined)), 30000, 250);
});

afterAll(async () => {
  await browser?.close();
  await closeApi?.();
  await prisma?.$disconnect();
  if (temporal?.exitCode === null) {
    const exited = new Promise((resolve) => temporal.once('exit', resolve));
    temporal.kill();
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

/*
 * Browser-side code goes as strings: this project's types have no DOM. useCodec is what
 * Settings → Codec Server saves: the endpoint and "Include cross-origin credentials".
 */
const useCodec = (endpoint: string) =>
  `localStorage.setItem('endpoint', ${JSON.stringify(JSON.stringify(endpoint))});
   localStorage.setItem('includeCredentials', 'true');`;
const pageShows = (text: string) => `document.body.innerText.includes(${JSON.stringify(text)})`;

async function openWorkflow(signIn: boolean) {
  // What typing any name and the admin key into the browser's sign-in prompt does.
  const context = await browser.newContext(
    signIn ? { httpCredentials: { username: 'operator', password: ADMIN_KEY } } : {},
  );
  const page = await context.newPage();
  const login = signIn ? await page.goto(`${apiUrl}/codec/login`) : undefined;
  await page.goto(uiUrl);
  await page.evaluate(useCodec(`${apiUrl}/codec`));
  const decoded = page.waitForResponse(
    (r) => r.url() === `${apiUrl}/codec/decode` && r.request().method() === 'POST',
  );
  await page.goto(`${uiUrl}/namespaces/default/workflows/${workflowId}`);
  return { context, page, login: login?.status(), decode: (await decoded).status() };
}

test('when the operator signs in at /codec/login and turns on cross-origin credentials, then the UI shows the input decrypted', async () => {
  const { context, page, login, decode } = await openWorkflow(true);

  expect(login).toBe(200);
  expect(decode).toBe(200);
  await page.waitForFunction(pageShows(customerId));
  await context.close();
});

test('when the browser is not signed in, then /codec/decode answers 401 and the input stays encrypted', async () => {
  const { context, page, decode } = await openWorkflow(false);

  expect(decode).toBe(401);
  expect(await page.evaluate(pageShows(customerId))).toBe(false);
  await context.close();
});
