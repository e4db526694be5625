import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

export default tseslint.config(
  { ignores: ['node_modules', 'dist', '.stack', 'generated', '**/*.js', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'import-x/no-cycle': 'error',
    },
  },
  {
    // Workflow code is replayed by Temporal and must stay deterministic: no I/O, no Node built-ins.
    files: ['workflows/**/*.ts'],
    ignores: ['workflows/**/*.test.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex:
                '^(node:)?(fs|fs/promises|net|http|https|http2|child_process|crypto|os|path|dns|tls|dgram|worker_threads|cluster|process|timers|stream)$',
              message: 'Workflow code must be deterministic: no Node built-ins.',
            },
            {
              regex:
                '^(kafkajs|@prisma/.*|@opensearch-project/.*|express|pino|mariadb|@temporalio/(client|worker|activity))$',
              message: 'Workflow code must not do I/O; call an activity instead.',
            },
            {
              regex: '^\\.\\./(activities|common)(/.*)?$',
              message: 'Import activities as types only (import type).',
              allowTypeImports: true,
            },
          ],
        },
      ],
    },
  },
);
