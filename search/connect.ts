import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';

/*
 * The TypeScript twin of stack/components/connectors.sh: tests register the connectors
 * themselves (idempotently) so they do not depend on how the stack was brought up.
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

/** PUT /connectors/<name>/config for each *.properties in `dir`; returns the names. */
export async function registerConnectors(connectUrl: string, dir: string): Promise<string[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.properties')).sort();
  for (const file of files) {
    const name = basename(file, '.properties');
    const config = parseProperties(await readFile(join(dir, file), 'utf8'));
    const res = await fetch(`${connectUrl}/connectors/${name}/config`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(config),
    });
    if (res.status !== 200 && res.status !== 201) {
      throw new Error(`Connect refused ${name}: ${res.status} ${await res.text()}`);
    }
  }
  return files.map((f) => basename(f, '.properties'));
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
