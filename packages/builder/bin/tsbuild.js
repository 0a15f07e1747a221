#!/usr/bin/env node
// `node packages/builder/bin/tsbuild.js` keeps working; the `tsbuild` command (bin/tsbuild) starts
// faster, see there.
import { createRequire } from 'node:module';

createRequire(import.meta.url)('./tsbuild.cjs');
