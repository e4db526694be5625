import { connectorConfig, parseProperties } from './connect';

test('properties: comments and blank lines skipped, the key ends at the first =', () => {
  const parsed = parseProperties('# note\n! other\n\n a.b = x=y \nc=\n');
  expect(parsed).toEqual({ 'a.b': 'x=y', c: '' });
});

test('a line without = is refused with the line', () => {
  expect(() => parseProperties('oops')).toThrow('oops');
});

test('the database and Kafka addresses come from the config, the rest from the file', () => {
  const file = {
    'database.hostname': '127.0.0.1',
    'database.port': '3306',
    'schema.history.internal.kafka.bootstrap.servers': '127.0.0.1:9092',
    'table.include.list': 'gateway.products',
  };
  const config = {
    DATABASE_URL: 'mysql://gateway:gateway@mariadb:3307/gateway',
    KAFKA_BROKERS: ['kafka:19092', 'kafka2:19092'],
  };

  expect(connectorConfig(file, config)).toEqual({
    'database.hostname': 'mariadb',
    'database.port': '3307',
    'schema.history.internal.kafka.bootstrap.servers': 'kafka:19092,kafka2:19092',
    'table.include.list': 'gateway.products',
  });
});
