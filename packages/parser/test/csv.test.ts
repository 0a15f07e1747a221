// One record of Go's encoding/csv (csv.ts), as BuildKit reads RUN --mount and buildx reads --output and --secret:
// the rows' columns and messages are what docker's CLI (Go's reader) prints for the same records as --mount values.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { csvRecord, type CsvProblem } from '../src/csv.js';

const rows: [string, string[] | CsvProblem][] = [
  ['type=image,name=a:1', ['type=image', 'name=a:1']],
  ['type=image,"name=a:1,b:1",push=true', ['type=image', 'name=a:1,b:1', 'push=true']],
  ['"a ""quoted"" word",x', ['a "quoted" word', 'x']],
  ['a,,b,', ['a', '', 'b', '']],
  ['', ['']],
  ['"a,b"', ['a,b']],
  ['name=x"y', { what: 'bare " in non-quoted-field', column: 7 }],
  ['type=image,"name=x:1', { what: 'extraneous or missing " in quoted-field', column: 21 }],
  ['"a"b,c', { what: 'extraneous or missing " in quoted-field', column: 3 }],
];

for (const [record, want] of rows)
  test(`csvRecord ${JSON.stringify(record)}`, () => {
    let problem: CsvProblem | undefined;
    const fail = (p: CsvProblem) => {
      problem = p;
      return new Error(p.what);
    };
    if (Array.isArray(want)) assert.equal(csvRecord(record, fail), want);
    else {
      assert.throws(() => csvRecord(record, fail));
      assert.equal(problem, want);
    }
  });

test.run();
