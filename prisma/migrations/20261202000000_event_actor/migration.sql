-- Who made a status change: an operator's name or Temporal's client identity.
ALTER TABLE `purchase_events` ADD COLUMN `actor` VARCHAR(255) NULL;
