-- The Temporal namespace of the api that registered the endpoint: only a dispatcher in that
-- namespace delivers to it, as only a relay in a row's namespace starts it (workflow_starts).
-- Two deployments sharing a database, like the local stack and its tests, then never both
-- deliver one event. Endpoints registered before this column are the default namespace's.
ALTER TABLE `webhook_endpoints` ADD COLUMN `namespace` VARCHAR(255) NOT NULL DEFAULT 'default';
