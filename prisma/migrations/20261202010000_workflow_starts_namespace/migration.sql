-- The Temporal namespace a row is started in: a relay sweeps only its own namespace's rows
-- (few are due at once, so the next_attempt_at index still serves the sweep). Rows written
-- before this column are the default namespace's.
ALTER TABLE `workflow_starts` ADD COLUMN `namespace` VARCHAR(255) NOT NULL DEFAULT 'default';
