// Lint: typescript-eslint on everything, and the portability rule: the browser-safe layers
// (core, framing, image, client, netmgmt) never touch Node built-ins or Buffer.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const portable = ['src/core/**/*.ts', 'src/framing/**/*.ts', 'src/image/**/*.ts', 'src/client/**/*.ts', 'src/netmgmt/*.ts', 'src/netmgmt/core/**/*.ts', 'src/index.ts', 'src/transport/ble/*.ts', 'src/transport/websocket.ts', 'src/transport/web-serial.ts', 'web/src/**/*.ts', 'web/src/**/*.tsx'];

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: portable,
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['node:*', 'buffer', 'fs', 'dgram', 'net', 'os', 'path', 'crypto', 'child_process'], message: 'Portable layers use Uint8Array/DataView only: no Node built-ins.' }] }],
      'no-restricted-globals': ['error', { name: 'Buffer', message: 'Use Uint8Array in portable layers.' }, { name: 'process', message: 'No process in portable layers.' }],
    },
  },
  {
    // node:test's describe/it return promises the runner itself awaits.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }] }],
    },
  },
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
);
