// Lint: typescript-eslint's recommended rules, with type-aware checks where a bug hides
// (floating promises). Formatting is prettier's job, not eslint's.
import js from '@eslint/js'
import globals from 'globals'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'coverage/',
      'node_modules/',
      'bench/.tmp/',
      'test-artifacts/',
      '.sessions/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['jest.config.ts'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      // `interface SessionData {}` is the type users augment with `declare module`.
      '@typescript-eslint/no-empty-object-type': ['error', { allowInterfaces: 'always' }],
      // Namespaces only merge types into the callable default export, as @types/express-session does.
      '@typescript-eslint/no-namespace': [
        'error',
        { allowDeclarations: true, allowDefinitionFiles: true },
      ],
    },
  },
  {
    // express-session's callback and store signatures use `any` (as @types/express-session does);
    // the drop-in keeps them so existing code type-checks unchanged.
    files: ['lib/compat/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Tests and the bench drive real servers and fakes; `any` at those edges is deliberate.
    files: ['test/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      // Tests and the bench load CommonJS peers (express-session and its stores) as their users do.
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  { files: ['**/*.mjs', '**/*.js'], ...tseslint.configs.disableTypeChecked },
  { files: ['scripts/**', '*.mjs'], languageOptions: { globals: globals.node } },
  { files: ['example-app/public/**'], languageOptions: { globals: globals.browser } },
)
