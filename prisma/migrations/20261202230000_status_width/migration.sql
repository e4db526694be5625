-- PARTIALLY_REFUNDED is 18 characters: room for it in the status and its timeline.
ALTER TABLE `purchases` MODIFY `status` VARCHAR(24) NOT NULL;
ALTER TABLE `purchase_events` MODIFY `from_status` VARCHAR(24) NULL, MODIFY `to_status` VARCHAR(24) NOT NULL;
