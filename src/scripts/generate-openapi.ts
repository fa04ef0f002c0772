// npm run openapi: regenerates openapi/openapi.json from the route schemas.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateOpenApiDocument } from '../openapi.js';
import { PROJECT_ROOT } from '../../database/paths.js';

const target = join(PROJECT_ROOT, 'openapi/openapi.json');
await writeFile(target, await generateOpenApiDocument());
process.stderr.write(`wrote ${target}\n`);
