// eslint: strict TypeScript rules plus the house boundaries: SQL only in src/db, process.env only in
// src/config.ts, and imports flowing smtp/policy/pipe → ingest → route → handlers → db.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const layer = (files, forbidden, sqlAllowed = false) => ({
  files,
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          ...forbidden.map((dir) => ({ group: [`**/${dir}/*`], message: `imports flow smtp → ingest → route → handlers → db; ${files[0]} may not import ${dir}/` })),
          ...(sqlAllowed ? [] : [{ group: ['drizzle-orm', 'drizzle-orm/*', 'better-sqlite3'], message: 'SQL lives only in src/db/' }]),
        ],
      },
    ],
  },
});

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'migrations/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', Buffer: 'readonly', console: 'readonly', URL: 'readonly', performance: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/config.ts'],
    rules: {
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'read settings through src/config.ts' }],
    },
  },
  layer(['src/smtp/**/*.ts', 'src/policy/**/*.ts', 'src/pipe/**/*.ts', 'src/monitor/**/*.ts'], ['route', 'handlers', 'db']),
  layer(['src/ingest/**/*.ts'], ['smtp']),
  layer(['src/route/**/*.ts'], ['smtp', 'ingest']),
  layer(['src/handlers/**/*.ts'], ['smtp', 'ingest', 'route']),
  layer(['src/address/**/*.ts', 'src/text/**/*.ts'], ['smtp', 'ingest', 'route', 'handlers', 'db']),
  layer(['src/db/**/*.ts'], ['smtp', 'ingest', 'route', 'handlers'], true),
  layer(['src/cli.ts', 'src/serve.ts', 'src/config.ts', 'src/log.ts', 'src/errors.ts'], []),
);
