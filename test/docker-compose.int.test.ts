import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

// docker-compose.yml is for users with Docker; this machine has none, but Debian's
// docker-compose (v1) validates and resolves a compose file without talking to an engine.
const run = promisify(execFile);
const REPO_ROOT = join(__dirname, '..');

async function compose(...args: string[]): Promise<string> {
  const { stdout } = await run('docker-compose', args, { cwd: REPO_ROOT });
  return stdout;
}

async function pinnedVersions(): Promise<Map<string, string>> {
  const text = await readFile(join(REPO_ROOT, 'stack', 'versions.env'), 'utf8');
  const versions = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z0-9_]+)=(\S+)\s*$/.exec(line);
    if (m?.[1] && m[2]) versions.set(m[1], m[2]);
  }
  return versions;
}

async function pinned(key: string): Promise<string> {
  const version = (await pinnedVersions()).get(key);
  if (!version) throw new Error(`stack/versions.env has no ${key}`);
  return version;
}

/** The lines of each service in `docker-compose config` output (two-space indented names). */
function servicesOf(resolved: string): Map<string, string[]> {
  const services = new Map<string, string[]>();
  let inServices = false;
  let current: string[] | undefined;
  for (const line of resolved.split('\n')) {
    if (/^\S/.test(line)) {
      inServices = line === 'services:';
      current = undefined;
      continue;
    }
    const name = inServices ? /^ {2}([\w.-]+):\s*$/.exec(line)?.[1] : undefined;
    if (name) {
      current = [];
      services.set(name, current);
    } else {
      current?.push(line);
    }
  }
  return services;
}

/** The value of the first `key: value` line of a service, quotes removed. */
function field(service: string[] | undefined, key: string): string | undefined {
  const pattern = new RegExp(`^\\s+${key}:\\s*['"]?([^'"\\s]+)['"]?\\s*$`);
  for (const line of service ?? []) {
    const m = pattern.exec(line);
    if (m?.[1]) return m[1];
  }
  return undefined;
}

/** The host ports a service pins to one number, which a second replica could not bind. */
function fixedHostPorts(service: string[] | undefined): string[] {
  const fixed: string[] = [];
  let inPorts = false;
  for (const line of service ?? []) {
    if (/^ {4}[^\s-]/.test(line)) inPorts = line.trim() === 'ports:';
    if (!inPorts) continue;
    // Short syntax, [ip:][host:]container[/proto]; or long syntax's `published: <port>`.
    const short = /^ {4}- ([^\s:]+:)?(?:([^\s:]*):)?(\d[\d-]*)(\/\w+)?$/.exec(line);
    const host = short ? (short[2] ?? (short[1] ? short[1].slice(0, -1) : '')) : undefined;
    const published = /^\s+published: ['"]?(\S+?)['"]?$/.exec(line)?.[1];
    const port = published ?? host;
    if (port && /^\d+$/.test(port)) fixed.push(line.trim());
  }
  return fixed;
}

describe('docker-compose.yml', () => {
  test('when docker-compose validates the file, then it exits 0', async () => {
    // Act: execFile rejects on a non-zero exit, with docker-compose's complaint in stderr.
    const validation = compose('config', '-q');

    // Assert
    await expect(validation).resolves.toBe('');
  });

  test('when image tags are read from the file itself, then none depends on variable interpolation', async () => {
    // Arrange
    const raw = await readFile(join(REPO_ROOT, 'docker-compose.yml'), 'utf8');

    // Act
    const imageLines = raw.split('\n').filter((line) => /^\s+image:/.test(line));

    // Assert
    expect(imageLines.length).toBeGreaterThanOrEqual(5);
    expect(imageLines.filter((line) => line.includes('$'))).toEqual([]);
  });
});

describe('docker-compose.yml, as docker-compose resolves it', () => {
  let services: Map<string, string[]>;

  beforeAll(async () => {
    services = servicesOf(await compose('config'));
  });

  test.each([
    ['mariadb', 'mariadb', 'MARIADB_VERSION'],
    ['kafka', 'apache/kafka', 'KAFKA_VERSION'],
    ['connect', 'quay.io/debezium/connect', 'DEBEZIUM_VERSION'],
    ['opensearch', 'opensearchproject/opensearch', 'OPENSEARCH_VERSION'],
    ['temporal', 'gateway-payment/temporal-cli', 'TEMPORAL_CLI_VERSION'],
  ])(
    'when the stack pins a version, then the %s service runs %s at that version',
    async (service, repository, key) => {
      // Arrange
      const version = await pinned(key);

      // Act
      const image = field(services.get(service), 'image');

      // Assert
      expect(image).toBe(`${repository}:${version}`);
    },
  );

  test.each(['api', 'process-purchases', 'payment-processing', 'search-indexer', 'webhooks'])(
    'when %s is scaled to two replicas, then it has no container_name and no fixed host port',
    (name) => {
      // Arrange
      const service = services.get(name);

      // Act
      const containerName = field(service, 'container_name');
      const pinned = fixedHostPorts(service);

      // Assert
      expect(service).toBeDefined();
      expect(containerName).toBeUndefined();
      expect(pinned).toEqual([]);
    },
  );

  test('when a service publishes one fixed host port, then the check sees it', () => {
    // The check above passes vacuously if it cannot read a port: show that it can.
    expect(fixedHostPorts(services.get('produto'))).toEqual(['- 127.0.0.1:3001:3001/tcp']);
    expect(fixedHostPorts(['    ports:', '    - 127.0.0.1::3000/tcp', '    - target: 9'])).toEqual(
      [],
    );
  });

  test('when the stack pins the Temporal CLI version, then the temporal image is built from that version', async () => {
    // Arrange
    const version = await pinned('TEMPORAL_CLI_VERSION');

    // Act: the Dockerfile's temporal stage runs `go install .../temporal@v$TEMPORAL_CLI_VERSION`.
    const buildArg = field(services.get('temporal'), 'TEMPORAL_CLI_VERSION');

    // Assert
    expect(buildArg).toBe(version);
  });
});
