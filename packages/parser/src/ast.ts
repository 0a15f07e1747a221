import type { Location, Warning } from './types.js';

/** A heredoc body attached to RUN/COPY/ADD (`<<EOF` ... `EOF`). */
export interface Heredoc {
  /** The delimiter with quotes removed. */
  name: string;
  /** The body as written, each line with its newline; `<<-` tab stripping is not applied yet. */
  content: string;
  /** False when any part of the delimiter was quoted (`<<"EOF"`): no expansion. */
  expand: boolean;
  /** `<<-`: leading tabs are stripped from the body. */
  chomp: boolean;
  /** The file descriptor prefix (`3<<EOF`), 0 when absent. */
  fd: number;
}

/** One instruction at syntax level, shaped like BuildKit's parser.Node. */
export interface Instruction {
  /** Upper-cased keyword (`RUN`); `cmd` keeps the spelling. */
  keyword: string;
  cmd: string;
  /** Leading `--flags` with quotes removed, as BuildKit keeps them. */
  flags: string[];
  /**
   * Arguments, split the way BuildKit's parser splits for this keyword. ENV/LABEL are key, value, separator triplets.
   */
  args: string[];
  /** Exec (JSON array) form. */
  json: boolean;
  /** The text after the flags, trimmed. */
  rest: string;
  /** ONBUILD's nested instruction. */
  sub?: Instruction;
  heredocs: Heredoc[];
  /** The logical line (continuations joined, comments dropped). */
  original: string;
  location: Location;
}

export interface Directives {
  syntax?: string;
  escape: string;
  check?: string;
  /** The line of the `# check=` directive, for errors about it. */
  checkLine?: number;
}

export interface Dockerfile {
  file: string;
  directives: Directives;
  instructions: Instruction[];
  warnings: Warning[];
}
