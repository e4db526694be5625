import { Router } from 'express';
import type { Request } from 'express';
import { merchantOf } from '../../common/auth';
import { badRequest } from '../../common/errors';
import {
  createEndpointBody,
  emptyBody,
  endpointId,
  eventId,
  listEventsQuery,
  redeliverBody,
} from './request';
import {
  createEndpoint,
  deleteEndpoint,
  getEndpoint,
  getEvent,
  listDeliveries,
  listEndpoints,
  listEvents,
  redeliver,
  rotateSecret,
} from './service';
import type { WebhookApiDeps } from './service';

/** express.json leaves an absent body undefined; it reads as `{}`. */
const bodyOf = (req: Request): unknown => req.body ?? {};

function endpointIdOf(req: Request): string {
  const id = endpointId.safeParse(req.params.id);
  if (!id.success) throw badRequest('invalid_webhook_endpoint_id', 'the endpoint id is malformed');
  return id.data;
}

function eventIdOf(req: Request): string {
  const id = eventId.safeParse(req.params.id);
  if (!id.success) throw badRequest('invalid_event_id', 'the event id is malformed');
  return id.data;
}

/** /v1/webhook-endpoints: a merchant's endpoints; the secret is shown on create and rotate only. */
export function webhookEndpointRoutes(deps: WebhookApiDeps): Router {
  const router = Router();

  router.post('/', async (req, res) => {
    const merchantId = merchantOf(res.locals.principal);
    const body = createEndpointBody.parse(bodyOf(req));
    const endpoint = await createEndpoint(deps, merchantId, body);
    res.status(201).location(endpoint.links.self).json(endpoint);
  });

  router.get('/', async (_req, res) => {
    res.json(await listEndpoints(deps, merchantOf(res.locals.principal)));
  });

  router.get('/:id', async (req, res) => {
    const merchantId = merchantOf(res.locals.principal);
    res.json(await getEndpoint(deps, merchantId, endpointIdOf(req)));
  });

  router.delete('/:id', async (req, res) => {
    const merchantId = merchantOf(res.locals.principal);
    await deleteEndpoint(deps, merchantId, endpointIdOf(req));
    res.status(204).end();
  });

  router.post('/:id/rotate-secret', async (req, res) => {
    const merchantId = merchantOf(res.locals.principal);
    const id = endpointIdOf(req);
    emptyBody.parse(bodyOf(req));
    res.json(await rotateSecret(deps, merchantId, id));
  });

  return router;
}

/** /v1/events: the merchant's event log, each event's delivery attempts, and redelivery. */
export function eventRoutes(deps: WebhookApiDeps): Router {
  const router = Router();

  router.get('/', async (req, res) => {
    const merchantId = merchantOf(res.locals.principal);
    res.json(await listEvents(deps, merchantId, listEventsQuery.parse(req.query)));
  });

  router.get('/:id', async (req, res) => {
    const merchantId = merchantOf(res.locals.principal);
    res.json(await getEvent(deps, merchantId, eventIdOf(req)));
  });

  router.get('/:id/deliveries', async (req, res) => {
    const merchantId = merchantOf(res.locals.principal);
    res.json(await listDeliveries(deps, merchantId, eventIdOf(req)));
  });

  router.post('/:id/redeliver', async (req, res) => {
    const merchantId = merchantOf(res.locals.principal);
    const id = eventIdOf(req);
    const body = redeliverBody.parse(bodyOf(req));
    res.status(202).json(await redeliver(deps, merchantId, id, body));
  });

  return router;
}
