// A registry that cannot be reached: the error says what was being done (which manifest, which blob of which
// repository, which login) before the request that failed, as an error status's message does.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../src/index.js';
import { RegistryClient } from '../src/remote/client.js';
import { newStats } from '../src/remote/blob.js';
import { uploadBlob } from '../src/remote/blob-upload.js';
import * as remote from '../src/remote/index.js';

// Nothing listens on port 1: every request is refused at once.
const host = '127.0.0.1:1';
const once = { attempts: 1 };

test('a refused connection names the operation, the registry and the repository', async () => {
  const root = mkdtempSync(join(tmpdir(), 'tsbuild-remote-neterr-'));
  try {
    const store = await Store.open(root);
    const desc = { mediaType: 'application/octet-stream', ...(await store.blobs.put('a layer')) };
    const cases: Array<[string, () => Promise<unknown>, RegExp]> = [
      [
        'pull',
        () => remote.pull(store.blobs, `${host}/app/x:1`, { credentials: remote.noCredentials, retry: once }),
        new RegExp(
          String.raw`^fetching manifest 127\.0\.0\.1:1/app/x:1: ` +
            String.raw`GET http://127\.0\.0\.1:1/v2/app/x/manifests/1: connection refused$`,
        ),
      ],
      [
        'push',
        () =>
          uploadBlob(
            new RegistryClient(host, { credentials: remote.noCredentials, retry: once }),
            'app/x',
            desc,
            store.blobs,
            newStats(),
          ),
        new RegExp(`^checking blob ${desc.digest} in 127\\.0\\.0\\.1:1/app/x: HEAD http://127\\.0\\.0\\.1:1/v2/app/x/`),
      ],
      [
        'login',
        () => remote.login(host, 'u', 'p', { retry: once, configFile: join(root, 'config.json') }),
        /^checking 127\.0\.0\.1:1\/v2\/: GET http:\/\/127\.0\.0\.1:1\/v2\/: connection refused$/,
      ],
    ];
    for (const [name, run, want] of cases) {
      const err = await run().then(
        () => undefined,
        (e: Error) => e,
      );
      assert.instance(err, remote.RegistryError, name);
      assert.match(err!.message, want, name);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
