import { testConfig } from '../config';

test('when Kafka Connect lists its plugins, then the Debezium MariaDB source connector is there', async () => {
  const res = await fetch(`${testConfig.KAFKA_CONNECT_URL}/connector-plugins`);
  const plugins = (await res.json()) as { class: string; type: string; version: string }[];

  expect(res.status).toBe(200);
  expect(plugins).toContainEqual(
    expect.objectContaining({
      class: 'io.debezium.connector.mariadb.MariaDbConnector',
      type: 'source',
    }),
  );
});
