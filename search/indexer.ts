import type { Admin, Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Logger } from '../common/logger';
import {
  CDC_TOPIC_CONFIG,
  CDC_TOPICS,
  CdcParseError,
  indexOfTopic,
  lastPerDocument,
  toIndexOp,
} from './cdc';
import type { IndexOp } from './cdc';
import { SearchUnavailableError } from './engine';
import type { SearchEngine } from './engine';

/*
 * search-indexer: Debezium change topics -> the search engine. One consumer group; each
 * batch is one partition's messages in offset order, and a row's events all live in one
 * partition (keyed by primary key), so a row's changes are applied in commit order.
 * Offsets are committed only after the engine took the batch: a crash replays, and
 * external versions make a replay harmless.
 */

export interface IndexerOptions {
  kafka: Kafka;
  engine: SearchEngine;
  logger: Logger;
  groupId: string;
  /** Defaults to both CDC topics. */
  topics?: string[];
  /** Upper bound of the back-off while the engine is down. */
  maxRetryDelayMs?: number;
}

export interface Indexer {
  stop(): Promise<void>;
}

export async function startIndexer(options: IndexerOptions): Promise<Indexer> {
  const { kafka, engine, logger, groupId } = options;
  const topics = options.topics ?? Object.values(CDC_TOPICS);
  let stopping = false;
  const stopped = new AbortController();

  const admin = kafka.admin();
  await admin.connect();
  try {
    await ensureCdcTopics(admin, topics);
  } finally {
    await admin.disconnect();
  }
  await untilAvailable(() => engine.ensureIndices(), logger, stopped.signal, options);

  const consumer: Consumer = kafka.consumer({
    groupId,
    allowAutoTopicCreation: false,
    // Freshness: answer a fetch as soon as anything arrives, wait at most 100 ms otherwise.
    maxWaitTimeInMs: 100,
  });
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    logger.info({ groupId, assignment: e.payload.memberAssignment }, 'indexer started');
  });
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: true });
  await consumer.run({
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: 3,
    eachBatch: (payload) => indexBatch(payload, { ...options, signal: stopped.signal }),
  });

  return {
    async stop() {
      if (stopping) return;
      stopping = true;
      stopped.abort();
      await consumer.disconnect();
    },
  };
}

async function indexBatch(
  payload: EachBatchPayload,
  options: IndexerOptions & { signal: AbortSignal },
): Promise<void> {
  const { batch } = payload;
  const { engine, logger } = options;
  const index = indexOfTopic(batch.topic);
  const last = batch.messages[batch.messages.length - 1];
  if (!index || !last) return;

  const ops: IndexOp[] = [];
  for (const m of batch.messages) {
    try {
      const op = toIndexOp(index, m.key, m.value);
      if (op) ops.push(op);
    } catch (err) {
      if (!(err instanceof CdcParseError)) throw err;
      // A message we cannot read would block its partition forever; `search verify` shows the gap.
      logger.error(
        { topic: batch.topic, partition: batch.partition, offset: m.offset, reason: err.message },
        'skipping an unreadable change event',
      );
    }
  }

  const result = await untilAvailable(
    () => engine.apply(lastPerDocument(ops)),
    logger,
    options.signal,
    options,
    async () => {
      if (!payload.isRunning() || payload.isStale()) return false;
      await payload.heartbeat();
      return true;
    },
  );
  if (!result) return; // stopping or rebalanced: the next owner starts from the committed offset
  for (const r of result.rejected) {
    logger.error({ index, id: r.op.id, reason: r.reason }, 'the search engine rejected a document');
  }
  logger.debug(
    {
      topic: batch.topic,
      partition: batch.partition,
      messages: batch.messages.length,
      ...result,
      rejected: result.rejected.length,
    },
    'batch indexed',
  );
  payload.resolveOffset(last.offset);
  await payload.commitOffsetsIfNecessary();
}

/**
 * Runs `call` until it does not throw SearchUnavailableError, backing off up to
 * maxRetryDelayMs. Returns undefined if stopped (signal, or `keepGoing` says no).
 */
async function untilAvailable<T>(
  call: () => Promise<T>,
  logger: Logger,
  signal: AbortSignal,
  options: { maxRetryDelayMs?: number },
  keepGoing: () => Promise<boolean> = () => Promise.resolve(true),
): Promise<T | undefined> {
  const maxDelay = options.maxRetryDelayMs ?? 5000;
  for (let attempt = 1; ; attempt++) {
    if (signal.aborted) return undefined;
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof SearchUnavailableError)) throw err;
      const delay = Math.min(200 * 2 ** (attempt - 1), maxDelay);
      if (attempt === 1 || attempt % 10 === 0) {
        logger.warn({ reason: err.message, attempt, delay }, 'search engine unavailable; retrying');
      }
      await sleep(delay, signal);
      if (!(await keepGoing())) return undefined;
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

/**
 * Creates missing CDC topics with the connector's layout, so a topic never springs into
 * existence with the broker's defaults (one partition, delete policy) because a consumer
 * subscribed first.
 */
export async function ensureCdcTopics(admin: Admin, topics: string[]): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t));
  if (missing.length === 0) return;
  try {
    await admin.createTopics({
      topics: missing.map((topic) => ({ topic, ...CDC_TOPIC_CONFIG })),
      waitForLeaders: true,
    });
  } catch (err) {
    // Connect may have created one in the meantime.
    const again = new Set(await admin.listTopics());
    if (!missing.every((t) => again.has(t))) throw err;
  }
}
