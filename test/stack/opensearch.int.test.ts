import { randomUUID } from 'node:crypto';
import { Client } from '@opensearch-project/opensearch';
import { testConfig } from '../config';

test('when a document is indexed in OpenSearch, then a full-text search finds it', async () => {
  const client = new Client({ node: testConfig.OPENSEARCH_URL });
  const index = `stack-test-${randomUUID()}`;
  try {
    await client.indices.create({
      index,
      body: { mappings: { properties: { name: { type: 'text' } } } },
    });
    await client.index({ index, id: '1', body: { name: 'Cafe especial' }, refresh: true });

    const result = await client.search({ index, body: { query: { match: { name: 'especial' } } } });

    expect(result.body.hits.hits.map((h) => h._id)).toEqual(['1']);
  } finally {
    await client.indices.delete({ index }, { ignore: [404] });
    await client.close();
  }
});
