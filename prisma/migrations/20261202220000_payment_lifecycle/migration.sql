-- Manual capture: how the purchase is captured, the authorization it holds, and what of it
-- was captured. A purchase approved before this column was captured in full.
ALTER TABLE `purchases`
    ADD COLUMN `capture_method` VARCHAR(16) NOT NULL DEFAULT 'automatic',
    ADD COLUMN `provider_authorization_id` VARCHAR(100) NULL,
    ADD COLUMN `amount_captured` BIGINT NULL,
    ADD COLUMN `amount_refunded` BIGINT NOT NULL DEFAULT 0;
UPDATE `purchases` SET `amount_captured` = `amount_minor` WHERE `status` = 'APPROVED';

-- One row per refund; its own workflow moves it from PENDING.
CREATE TABLE `refunds` (
    `id` VARCHAR(40) NOT NULL,
    `purchase_id` VARCHAR(40) NOT NULL,
    `merchant_id` VARCHAR(64) NOT NULL,
    `idempotency_key` VARCHAR(255) NOT NULL,
    `amount_minor` BIGINT NOT NULL,
    `currency` CHAR(3) NOT NULL,
    `status` VARCHAR(16) NOT NULL,
    `reason` VARCHAR(500) NULL,
    `restock` BOOLEAN NOT NULL DEFAULT false,
    `failure` VARCHAR(500) NULL,
    `parked` BOOLEAN NOT NULL DEFAULT false,
    `attempts` INTEGER NOT NULL DEFAULT 0,
    `provider_refund_id` VARCHAR(100) NULL,
    `created_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    `updated_at` DATETIME(3) NOT NULL,

    INDEX `refunds_purchase_id_created_at_idx`(`purchase_id`, `created_at`),
    UNIQUE INDEX `refunds_merchant_id_idempotency_key_key`(`merchant_id`, `idempotency_key`),
    PRIMARY KEY (`id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- The outbox starts refunds too; for those, purchase_id holds the refund's id.
ALTER TABLE `workflow_starts` ADD COLUMN `workflow_type` VARCHAR(64) NOT NULL DEFAULT 'purchase';

ALTER TABLE `refunds` ADD CONSTRAINT `refunds_purchase_id_fkey` FOREIGN KEY (`purchase_id`) REFERENCES `purchases`(`id`) ON DELETE RESTRICT ON UPDATE CASCADE;
