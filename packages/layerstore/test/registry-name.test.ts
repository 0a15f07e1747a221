// The one normalisation of what a person types after `login` / `logout`: the registry as references
// name it (credentials are kept under it) and as docker prints it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { registryName } from '../src/remote/login.js';

const cases: { input: string; registry?: string; address?: string; error?: RegExp }[] = [
  // Docker Hub: empty is its v1 address, as docker prints it; the aliases are docker.io.
  { input: '', registry: 'docker.io', address: 'https://index.docker.io/v1/' },
  { input: 'docker.io', registry: 'docker.io', address: 'docker.io' },
  { input: 'index.docker.io', registry: 'docker.io', address: 'index.docker.io' },
  { input: 'registry-1.docker.io', registry: 'docker.io', address: 'registry-1.docker.io' },
  { input: 'https://index.docker.io/v1/', registry: 'docker.io', address: 'index.docker.io' },
  // A URL or host/path: its host, the case as typed.
  { input: 'http://nothere.example:5000/', registry: 'nothere.example:5000', address: 'nothere.example:5000' },
  { input: 'https://Foo.example:5000/v2/x', registry: 'Foo.example:5000', address: 'Foo.example:5000' },
  { input: 'HTTPS://reg.example', registry: 'reg.example', address: 'reg.example' },
  { input: 'localhost:5000/a/b', registry: 'localhost:5000', address: 'localhost:5000' },
  { input: '127.0.0.1:5000', registry: '127.0.0.1:5000', address: '127.0.0.1:5000' },
  { input: '[::1]:5000', registry: '[::1]:5000', address: '[::1]:5000' },
  { input: 'reg', registry: 'reg', address: 'reg' },
  // Refused: credentials (never echoed), other schemes, what is no host.
  { input: 'alice:s3cret@reg.example', error: /^"\*\*\*@reg\.example" holds credentials \(user:password@\)$/ },
  { input: 'https://alice:s3cret@reg.example/', error: /holds credentials/ },
  { input: 'ftp://reg.example', error: /^"ftp:\/\/reg\.example": a registry is a host\[:port\] or an http\(s\) URL$/ },
  { input: 'a b', error: /^"a b": bad registry host "a b"$/ },
  { input: 'reg_x.example', error: /^"reg_x\.example": bad registry host "reg_x\.example"$/ },
  { input: 'reg.example:port', error: /bad registry host/ },
];

for (const c of cases)
  test(`registryName(${JSON.stringify(c.input)}) → ${c.error ? 'refused' : `${c.registry}, ${c.address}`}`, () => {
    if (c.error) {
      assert.throws(
        () => registryName(c.input),
        (e: Error) => c.error!.test(e.message) && !/s3cret/.test(e.message),
      );
      return;
    }
    assert.equal(registryName(c.input), { registry: c.registry, address: c.address });
  });

test.run();
