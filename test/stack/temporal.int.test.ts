import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import * as activities from '../fixtures/greeting-activities';
import { greeting } from '../fixtures/greeting-workflow';
import { testConfig } from '../config';

test('when a workflow runs on the Temporal dev server, then a real worker completes it', async () => {
  const taskQueue = `stack-test-${randomUUID()}`;
  const workerConnection = await NativeConnection.connect({ address: testConfig.TEMPORAL_ADDRESS });
  const worker = await Worker.create({
    connection: workerConnection,
    namespace: testConfig.TEMPORAL_NAMESPACE,
    taskQueue,
    workflowsPath: require.resolve('../fixtures/greeting-workflow'),
    activities,
  });
  const connection = await Connection.connect({ address: testConfig.TEMPORAL_ADDRESS });
  const client = new Client({ connection, namespace: testConfig.TEMPORAL_NAMESPACE });

  const result = await worker.runUntil(
    client.workflow.execute(greeting, { taskQueue, workflowId: taskQueue, args: ['temporal'] }),
  );

  expect(result).toBe('hello, temporal');
  await connection.close();
  await workerConnection.close();
});
