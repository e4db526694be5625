import type { Config } from '../common/config';
import { createPrisma } from '../common/db';
import { createWebhookStore } from '../webhooks/store';

/* Operator commands for a merchant's webhook endpoint, through the endpoints' owner. */

const USAGE = 'usage: webhooks rotate-secret <endpointId> | webhooks enable <endpointId>';
const HOUR_MS = 3_600_000;

export async function webhooksCommand(config: Config, args: string[]): Promise<number> {
  const [sub, id, ...rest] = args;
  if (!id || rest.length > 0 || !/^we_[0-9a-f]{32}$/.test(id)) {
    console.error(USAGE);
    return 2;
  }
  const prisma = createPrisma(config.DATABASE_URL, 1);
  const store = createWebhookStore({ prisma, config });
  try {
    if (sub === 'rotate-secret') {
      const graceMs = config.WEBHOOK_SECRET_GRACE_HOURS * HOUR_MS;
      const rotated = await store.rotateSecret(id, graceMs);
      if (!rotated) throw new Error(`webhook endpoint ${id} not found`);
      const until = rotated.endpoint.previousSecretExpiresAt?.toISOString() ?? 'now';
      // The new secret on stdout alone, so a script can hand it on; the rest on stderr.
      console.log(rotated.secret);
      console.error(`rotated ${id}; the previous secret also signs until ${until}`);
      return 0;
    }
    if (sub === 'enable') {
      if (!(await store.enableEndpoint(id))) throw new Error(`webhook endpoint ${id} not found`);
      console.error(`enabled ${id}; new events are delivered to it again`);
      return 0;
    }
    console.error(USAGE);
    return 2;
  } finally {
    await prisma.$disconnect();
  }
}
