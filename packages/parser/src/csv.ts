// Go's encoding/csv reading one record, as BuildKit reads RUN --mount and buildx reads --output/--cache-to:
// fields split at commas, a field in double quotes may hold commas, `""` in it is one quote. Pure: the caller
// turns a malformed record into its own error (BuildKit's words for RUN, the flag's for the CLI).

/** What Go's reader says of a malformed record: its message, and the 1-based column it names. */
export type CsvProblem = {
  what: 'bare " in non-quoted-field' | 'extraneous or missing " in quoted-field';
  column: number;
};

/** The fields of one record; `fail` makes the error thrown for a malformed one. */
export function csvRecord(s: string, fail: (p: CsvProblem) => Error): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (s[i] === '"') {
      i++;
      for (;;) {
        if (i >= s.length) throw fail({ what: 'extraneous or missing " in quoted-field', column: i + 1 });
        if (s[i] === '"') {
          if (s[i + 1] !== '"') break;
          i++;
        }
        field += s[i++];
      }
      i++; // the closing quote
      // Go names the column of the closing quote.
      if (i < s.length && s[i] !== ',') throw fail({ what: 'extraneous or missing " in quoted-field', column: i });
    } else
      for (; i < s.length && s[i] !== ','; i++) {
        if (s[i] === '"') throw fail({ what: 'bare " in non-quoted-field', column: i + 1 });
        field += s[i];
      }
    out.push(field);
    if (i >= s.length) return out;
    i++; // the comma
  }
}
