import { z } from 'zod';

export const endpointId = z.string().regex(/^we_[0-9a-f]{32}$/);
/** Event ids are `<purchaseId>:<type>:<round>` and the like. */
export const eventId = z.string().regex(/^[\w.:-]{1,255}$/);

export const createEndpointBody = z.strictObject({
  url: z.string().min(1).max(2048),
  // Checked against the known types in the service, which answers 422 naming the unknown ones.
  events: z.array(z.string().min(1).max(64)).min(1).max(50),
});
export type CreateEndpointBody = z.infer<typeof createEndpointBody>;

export const redeliverBody = z.strictObject({ endpointId: endpointId.optional() });
export type RedeliverBody = z.infer<typeof redeliverBody>;

/** The bodies of calls that take none: empty or `{}`, nothing else. */
export const emptyBody = z.strictObject({});

export const listEventsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).max(500).optional(),
});
