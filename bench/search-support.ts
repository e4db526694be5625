import type { Client } from '@opensearch-project/opensearch';
import pino from 'pino';
import type { Config } from '../common/config';
import { createKafka } from '../common/kafka';
import { createLogger } from '../common/logger';
import { startIndexer } from '../search/indexer';
import { createOpenSearchClient, createOpenSearchEngine } from '../search/opensearch';
import type { Deadline, Machine } from './support';
import { log } from './support';

/* What the two search benchmarks share: the pipeline checks and the indexer stand-in. */

/** The alias produto searches; the benchmarks measure the real pipeline, not a test prefix. */
export const PRODUCTS_ALIAS = 'products';
/** The stack's indexer group: an in-process stand-in resumes where the app left off. */
export const INDEXER_GROUP = 'search-indexer';
export const CONNECTOR = 'gateway-mariadb';

/** Fails with a clear message when the source connector or the products alias is missing. */
export async function checkPipeline(
  config: Config,
  client: Client,
  deadline: Deadline,
): Promise<void> {
  const url = new URL(`/connectors/${CONNECTOR}/status`, config.KAFKA_CONNECT_URL);
  const res = await deadline.race(fetch(url), 'asking Kafka Connect for the connector');
  if (!res.ok) {
    throw new Error(`Kafka Connect answered ${res.status} for ${CONNECTOR}; is it registered?`);
  }
  const status = (await res.json()) as {
    connector?: { state?: string };
    tasks?: { state?: string }[];
  };
  const states = [status.connector?.state, ...(status.tasks ?? []).map((t) => t.state)];
  if (states.length < 2 || states.some((s) => s !== 'RUNNING')) {
    throw new Error(`connector ${CONNECTOR} is not running: ${JSON.stringify(status)}`);
  }
  const alias = await deadline.race(
    client.indices.existsAlias({ name: PRODUCTS_ALIAS }),
    'checking the products alias',
  );
  if (!alias.body) throw new Error(`OpenSearch has no ${PRODUCTS_ALIAS} alias; run setup first`);
}

export interface IndexerHandle {
  /** Who moves CDC events into the index during the run. */
  mode: string;
  stop(): Promise<void>;
}

/**
 * Uses the stack's search-indexer when its group has members; otherwise runs the same
 * indexer code in this process under the same group, so it resumes from the app's
 * committed offsets and leaves them where the app will pick them up.
 */
export async function ensureIndexer(config: Config, deadline: Deadline): Promise<IndexerHandle> {
  const kafka = createKafka(config.KAFKA_BROKERS, 'bench-search');
  const admin = kafka.admin();
  await deadline.race(admin.connect(), 'connecting to Kafka');
  let members = 0;
  try {
    const { groups } = await deadline.race(
      admin.describeGroups([INDEXER_GROUP]),
      'describing the indexer group',
    );
    members = groups[0]?.members.length ?? 0;
  } finally {
    await admin.disconnect();
  }
  if (members > 0) {
    return {
      mode: `the stack's search-indexer (group ${INDEXER_GROUP}, ${members} member${members > 1 ? 's' : ''})`,
      stop: () => Promise.resolve(),
    };
  }
  log(`no member in consumer group ${INDEXER_GROUP}: starting the indexer in this process`);
  // Its logs go to stderr: stdout carries the report.
  const logger = createLogger('bench-search-indexer', 'warn', pino.destination(2));
  const engine = createOpenSearchEngine(createOpenSearchClient(config.OPENSEARCH_URL));
  const indexer = await deadline.race(
    startIndexer({ kafka, engine, logger, groupId: INDEXER_GROUP }),
    'starting the in-process indexer',
  );
  return {
    mode: `search/indexer.ts in the benchmark process (group ${INDEXER_GROUP}; the stack's search-indexer app was not running)`,
    async stop() {
      await indexer.stop();
      await engine.close();
    },
  };
}

/** Nearest-rank percentile of unsorted samples. */
export function percentile(samples: number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? NaN;
}

export const ms = (v: number): string =>
  v === Infinity ? 'timed out' : Number.isFinite(v) ? `${v.toFixed(1)} ms` : 'n/a';

export function machineTable(start: Machine, end: Machine): string {
  const load = (m: Machine) => m.load.map((l) => l.toFixed(2)).join(' / ');
  return `| machine | |
| --- | --- |
| nproc | ${start.cpus} (${start.cpuModel}) |
| memory | ${start.memoryGiB} GiB |
| node | ${start.node} |
| load average 1/5/15 min, start | ${load(start)} |
| load average 1/5/15 min, end | ${load(end)} |
`;
}
