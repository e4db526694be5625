import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';

import type { Config } from '../common/config';

/*
 * connectors/*.properties hold each Kafka Connect connector's config as written for the
 * native stack (127.0.0.1). Registering takes the MariaDB and Kafka addresses from the
 * caller's config instead, so the same files serve docker-compose's network. Used by
 * `node dist/ops/cli.js connect register` (stack.sh up, docker-compose) and by the tests,
 * which register the connectors themselves so they do not depend on how the stack came up.
 */

/** key=value lines; '#'/'!' comments and blank lines skipped; no continuations or escapes. */
export function parseProperties(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith('!')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`not a key=value line: ${line}`);
    out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return out;
}

type Addresses = Pick<Config, 'DATABASE_URL' | 'KAFKA_BROKERS'>;

/** The file's config with the database and Kafka addresses of `config`. */
export function connectorConfig(
  file: Record<string, string>,
  config: Addresses,
): Record<string, string> {
  const db = new URL(config.DATABASE_URL);
  const out = { ...file };
  if ('database.hostname' in out) {
    out['database.hostname'] = db.hostname;
    out['database.port'] = db.port || '3306';
  }
  if ('schema.history.internal.kafka.bootstrap.servers' in out) {
    out['schema.history.internal.kafka.bootstrap.servers'] = config.KAFKA_BROKERS.join(',');
  }
  return out;
}

/**
 * PUT /connectors/<name>/config for each *.properties in `dir` (name = file name without
 * .properties); returns "<name> (<status>)" each. PUT creates or replaces, so running it
 * again is harmless, and an unchanged config leaves the running connector alone.
 */
export async function registerConnectors(
  config: Addresses & Pick<Config, 'KAFKA_CONNECT_URL'>,
  dir: string,
): Promise<string[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.properties')).sort();
  const done: string[] = [];
  for (const file of files) {
    const name = basename(file, '.properties');
    const body = connectorConfig(parseProperties(await readFile(join(dir, file), 'utf8')), config);
    const res = await fetch(new URL(`/connectors/${name}/config`, config.KAFKA_CONNECT_URL), {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(60_000),
    });
    if (res.status !== 200 && res.status !== 201) {
      throw new Error(`Connect refused ${name}: ${res.status} ${await res.text()}`);
    }
    done.push(`${name} (${res.status})`);
  }
  return done;
}

export interface ConnectorStatus {
  connector: { state: string };
  tasks: { id: number; state: string; trace?: string }[];
}

export async function connectorStatus(connectUrl: string, name: string): Promise<ConnectorStatus> {
  const res = await fetch(`${connectUrl}/connectors/${name}/status`);
  if (!res.ok) throw new Error(`connector ${name}: ${res.status} ${await res.text()}`);
  return (await res.json()) as ConnectorStatus;
}

export const isRunning = (s: ConnectorStatus): boolean =>
  s.connector.state === 'RUNNING' &&
  s.tasks.length > 0 &&
  s.tasks.every((t) => t.state === 'RUNNING');
