-- CreateTable
CREATE TABLE `merchants` (
    `id` VARCHAR(64) NOT NULL,
    `name` VARCHAR(200) NOT NULL,
    `created_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),

    PRIMARY KEY (`id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- CreateTable
CREATE TABLE `api_keys` (
    `key_hash` CHAR(64) NOT NULL,
    `role` VARCHAR(16) NOT NULL,
    `merchant_id` VARCHAR(64) NULL,
    `created_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),

    INDEX `api_keys_merchant_id_idx`(`merchant_id`),
    PRIMARY KEY (`key_hash`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- CreateTable
CREATE TABLE `idempotency_keys` (
    `merchant_id` VARCHAR(64) NOT NULL,
    `idempotency_key` VARCHAR(255) NOT NULL,
    `request_hash` CHAR(64) NOT NULL,
    `purchase_id` VARCHAR(40) NOT NULL,
    `expires_at` DATETIME(3) NOT NULL,
    `created_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),

    PRIMARY KEY (`merchant_id`, `idempotency_key`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;

-- CreateTable
CREATE TABLE `purchases` (
    `id` VARCHAR(40) NOT NULL,
    `merchant_id` VARCHAR(64) NOT NULL,
    `customer_id` VARCHAR(255) NOT NULL,
    `idempotency_key` VARCHAR(255) NOT NULL,
    `workflow_id` VARCHAR(400) NOT NULL,
    `amount_minor` BIGINT NOT NULL,
    `currency` CHAR(3) NOT NULL,
    `status` VARCHAR(16) NOT NULL,
    `reason` VARCHAR(64) NULL,
    `duplicate_of` VARCHAR(40) NULL,
    `attempts` INTEGER NOT NULL DEFAULT 0,
    `last_error` VARCHAR(500) NULL,
    `provider_charge_id` VARCHAR(100) NULL,
    `metadata` JSON NULL,
    `version` INTEGER NOT NULL DEFAULT 1,
    `created_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    `updated_at` DATETIME(3) NOT NULL,

    INDEX `purchases_merchant_id_created_at_idx`(`merchant_id`, `created_at`),
    INDEX `purchases_merchant_id_customer_id_idx`(`merchant_id`, `customer_id`),
    INDEX `purchases_merchant_id_status_idx`(`merchant_id`, `status`),
    PRIMARY KEY (`id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- CreateTable
CREATE TABLE `purchase_items` (
    `purchase_id` VARCHAR(40) NOT NULL,
    `line` INTEGER NOT NULL,
    `product_id` CHAR(36) NOT NULL,
    `quantity` INTEGER NOT NULL,
    `unit_price_minor` INTEGER NOT NULL,

    INDEX `purchase_items_product_id_idx`(`product_id`),
    PRIMARY KEY (`purchase_id`, `line`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- CreateTable
CREATE TABLE `purchase_events` (
    `id` BIGINT NOT NULL AUTO_INCREMENT,
    `purchase_id` VARCHAR(40) NOT NULL,
    `from_status` VARCHAR(16) NULL,
    `to_status` VARCHAR(16) NOT NULL,
    `reason` VARCHAR(500) NULL,
    `created_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),

    INDEX `purchase_events_purchase_id_id_idx`(`purchase_id`, `id`),
    PRIMARY KEY (`id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- CreateTable
CREATE TABLE `purchase_fingerprints` (
    `fingerprint` CHAR(64) NOT NULL,
    `purchase_id` VARCHAR(40) NOT NULL,
    `expires_at` DATETIME(3) NOT NULL,

    PRIMARY KEY (`fingerprint`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- CreateTable
CREATE TABLE `stock_reservations` (
    `purchase_id` VARCHAR(40) NOT NULL,
    `released_at` DATETIME(3) NULL,
    `created_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),

    PRIMARY KEY (`purchase_id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- AddForeignKey
ALTER TABLE `purchase_items` ADD CONSTRAINT `purchase_items_purchase_id_fkey` FOREIGN KEY (`purchase_id`) REFERENCES `purchases`(`id`) ON DELETE RESTRICT ON UPDATE CASCADE;
