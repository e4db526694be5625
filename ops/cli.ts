import { loadConfig } from '../common/config';
import { createKafka, ensureTopics } from '../common/kafka';
import { migrate } from './migrate';

/** Operator commands: `node dist/ops/cli.js <command>`. */
async function main(argv: string[]): Promise<number> {
  const config = loadConfig();
  const [command] = argv;
  switch (command) {
    case 'migrate': {
      const applied = await migrate(config.DATABASE_URL);
      console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
      return 0;
    }
    case 'setup': {
      // Everything the platform needs after the engines are up; safe to run again.
      const applied = await migrate(config.DATABASE_URL);
      if (applied.length) console.log(`applied migrations: ${applied.join(', ')}`);
      const admin = createKafka(config.KAFKA_BROKERS, 'gateway-ops').admin();
      await admin.connect();
      try {
        await ensureTopics(admin);
      } finally {
        await admin.disconnect();
      }
      return 0;
    }
    default:
      console.error('usage: cli <migrate | setup>');
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
