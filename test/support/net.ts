// Tests and benches take free ports from the same helper the service's own tools use.
export { freePort } from '../../src/net.js';
