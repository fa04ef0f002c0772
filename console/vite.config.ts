// The console's build: TypeScript + Preact (JSX via esbuild, no plugin) into
// dist/console, served by the service under /console/ (src/plugins/console.ts).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: '/console/',
  // Nothing from the environment reaches the bundle: no secrets by construction.
  envPrefix: 'SFM_CONSOLE_PUBLIC_',
  publicDir: false,
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/console', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // The polyfill would be an inline-free module anyway, but every supported browser has modulepreload.
    modulePreload: { polyfill: false },
    sourcemap: true,
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
  server: {
    // `npm run console:dev`: the page from Vite, the API from a service on :3000.
    proxy: { '/v1': 'http://127.0.0.1:3000', '/docs': 'http://127.0.0.1:3000' },
  },
});
