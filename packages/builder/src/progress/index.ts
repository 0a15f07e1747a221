import { PlainReporter, QuietReporter } from './plain.js';
import { resolveMode, type ProgressMode, type Reporter } from './reporter.js';
import { TtyReporter } from './tty.js';

export type { Reporter, StepHandle, ProgressMode } from './reporter.js';

export function createReporter(mode: ProgressMode): Reporter {
  switch (resolveMode(mode)) {
    case 'tty':
      return new TtyReporter();
    case 'quiet':
      return new QuietReporter();
    default:
      return new PlainReporter();
  }
}
