-- CreateTable
CREATE TABLE `workflow_starts` (
    `purchase_id` VARCHAR(40) NOT NULL,
    `workflow_id` VARCHAR(400) NOT NULL,
    `task_queue` VARCHAR(200) NOT NULL,
    `input` JSON NOT NULL,
    `attempts` INTEGER NOT NULL DEFAULT 0,
    `next_attempt_at` DATETIME(3) NOT NULL,
    `last_error` VARCHAR(500) NULL,
    `created_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),

    INDEX `workflow_starts_next_attempt_at_idx`(`next_attempt_at`),
    PRIMARY KEY (`purchase_id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
