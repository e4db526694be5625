-- Merchant webhooks (docs/webhooks.md): endpoints, the events recorded for each merchant,
-- and one row per delivery attempt. Written only by webhooks/store.ts.

-- CreateTable
CREATE TABLE `webhook_endpoints` (
    `id` VARCHAR(40) NOT NULL,
    `merchant_id` VARCHAR(64) NOT NULL,
    `url` VARCHAR(2048) NOT NULL,
    `events` JSON NOT NULL,
    `secret` JSON NOT NULL,
    `previous_secret` JSON NULL,
    `previous_secret_expires_at` DATETIME(3) NULL,
    `status` VARCHAR(16) NOT NULL DEFAULT 'enabled',
    `failing_since` DATETIME(3) NULL,
    `disabled_at` DATETIME(3) NULL,
    `created_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    `updated_at` DATETIME(3) NOT NULL,

    INDEX `webhook_endpoints_merchant_id_created_at_idx`(`merchant_id`, `created_at`),
    PRIMARY KEY (`id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- CreateTable
CREATE TABLE `webhook_events` (
    `id` VARCHAR(255) NOT NULL,
    `merchant_id` VARCHAR(64) NOT NULL,
    `type` VARCHAR(64) NOT NULL,
    `purchase_id` VARCHAR(40) NULL,
    `payload` JSON NOT NULL,
    `created_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),

    INDEX `webhook_events_merchant_id_created_at_id_idx`(`merchant_id`, `created_at`, `id`),
    PRIMARY KEY (`id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- CreateTable
CREATE TABLE `webhook_deliveries` (
    `id` BIGINT NOT NULL AUTO_INCREMENT,
    `event_id` VARCHAR(255) NOT NULL,
    `endpoint_id` VARCHAR(40) NOT NULL,
    `workflow_id` VARCHAR(400) NOT NULL,
    `attempt` INTEGER NOT NULL,
    `url` VARCHAR(2048) NOT NULL,
    `status_code` INTEGER NULL,
    `error` VARCHAR(500) NULL,
    `latency_ms` INTEGER NOT NULL,
    `response_body` VARCHAR(1024) NULL,
    `created_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),

    INDEX `webhook_deliveries_event_id_id_idx`(`event_id`, `id`),
    INDEX `webhook_deliveries_endpoint_id_id_idx`(`endpoint_id`, `id`),
    PRIMARY KEY (`id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
