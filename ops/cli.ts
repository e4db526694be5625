import { userInfo } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { dataConverterFor } from '../common/codec';
import { loadConfig } from '../common/config';
import type { Config } from '../common/config';
import { createPrisma } from '../common/db';
import { createKafka, ensureTopics } from '../common/kafka';
import { cancelSignal, refundWorkflowIdFor, retrySignal } from '../workflows/contract';
import { registerConnectors } from '../search/connect';
import { readDeadLetters } from './dlq';
import { migrate } from './migrate';
import { searchCommand } from './search';
import { seedLocal } from './seed';
import { webhooksCommand } from './webhooks';

const USAGE = `usage: node dist/ops/cli.js <command>
  migrate                      apply prisma/migrations
  connect register             PUT every connectors/*.properties into Kafka Connect
  setup                        migrate, create Kafka topics, seed local keys (not in production)
  dlq list                     print the payments.dlq messages
  dlq retry <id> [--operator <name>] [--reason <text>]
                               charge a FAILED purchase again under the same idempotency key
  dlq cancel <id> [--operator <name>] [--reason <text>]
                               release the stock of a FAILED purchase and cancel it
                               (<id>: a purchase id, pur_..., or its workflow id, purchase:...;
                               a refund id, re_..., retries or gives up a parked refund)
  search verify [index...]     compare MySQL ids and versions with the search index
  search reindex <index>       rebuild an index (products | purchases) and swap its alias
  webhooks rotate-secret <endpointId>
                               print a new signing secret (we_...); the old one signs for
                               WEBHOOK_SECRET_GRACE_HOURS more
  webhooks enable <endpointId> enable a disabled endpoint again`;

async function setup(config: Config): Promise<void> {
  const applied = await migrate(config.DATABASE_URL);
  if (applied.length) console.log(`applied migrations: ${applied.join(', ')}`);
  const admin = createKafka(config.KAFKA_BROKERS, 'gateway-ops').admin();
  await admin.connect();
  try {
    await ensureTopics(admin);
  } finally {
    await admin.disconnect();
  }
  if (config.NODE_ENV !== 'production') {
    const prisma = createPrisma(config.DATABASE_URL, 1);
    await seedLocal(prisma);
    await prisma.$disconnect();
  }
}

/** The workflow an operator's signal goes to: a FAILED purchase's, or a parked refund's. */
async function parkedWorkflow(config: Config, ref: string): Promise<string> {
  const prisma = createPrisma(config.DATABASE_URL, 1);
  try {
    if (ref.startsWith('re_') || ref.startsWith('refund:')) {
      const id = ref.replace(/^refund:/, '');
      const refund = await prisma.refund.findUnique({ where: { id } });
      if (!refund) throw new Error(`refund ${id} not found`);
      if (!refund.parked) {
        throw new Error(
          `refund ${id} is ${refund.status}; only parked refunds wait for an operator`,
        );
      }
      return refundWorkflowIdFor(id);
    }
    const purchase = await prisma.purchase.findFirst({
      where: ref.startsWith('purchase:') ? { workflowId: ref } : { id: ref },
    });
    if (!purchase) throw new Error(`purchase ${ref} not found`);
    if (purchase.status !== 'FAILED') {
      throw new Error(
        `purchase ${purchase.id} is ${purchase.status}; only FAILED purchases wait for an operator`,
      );
    }
    return purchase.workflowId;
  } finally {
    await prisma.$disconnect();
  }
}

/**
 * Sends an operator signal to the workflow of a FAILED purchase (by purchase id or
 * workflow id) or of a parked refund; the operator and the reason go into the timeline.
 */
async function signalPurchase(config: Config, args: string[], action: 'retry' | 'cancel') {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { operator: { type: 'string' }, reason: { type: 'string' } },
  });
  const [ref] = positionals;
  if (!ref || positionals.length > 1) throw new Error(USAGE);
  const workflowId = await parkedWorkflow(config, ref);
  const signal = { operator: values.operator ?? userInfo().username, reason: values.reason };
  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  const client = new Client({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    dataConverter: dataConverterFor(config),
  });
  const handle = client.workflow.getHandle(workflowId);
  await handle.signal(action === 'retry' ? retrySignal : cancelSignal, signal);
  await connection.close();
  console.log(`sent ${action} to ${workflowId}`);
}

async function main(argv: string[]): Promise<number> {
  const config = loadConfig();
  const [command, sub, arg] = argv;
  if (command === 'migrate') {
    const applied = await migrate(config.DATABASE_URL);
    console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
  } else if (command === 'setup') {
    await setup(config);
  } else if (command === 'connect' && sub === 'register') {
    const dir = join(__dirname, '..', '..', 'connectors');
    for (const done of await registerConnectors(config, dir)) console.log(`registered ${done}`);
  } else if (command === 'search') {
    return searchCommand(config, argv.slice(1));
  } else if (command === 'webhooks') {
    return webhooksCommand(config, argv.slice(1));
  } else if (command === 'dlq' && sub === 'list') {
    const letters = await readDeadLetters(createKafka(config.KAFKA_BROKERS, 'gateway-ops'));
    for (const l of letters) console.log(JSON.stringify(l));
    console.error(`${letters.length} message(s)`);
  } else if (command === 'dlq' && (sub === 'retry' || sub === 'cancel') && arg) {
    await signalPurchase(config, argv.slice(2), sub);
  } else {
    console.error(USAGE);
    return 2;
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
