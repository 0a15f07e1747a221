import { PlainReporter, QuietReporter } from './plain.js';
import { resolveMode, type ProgressMode, type Reporter } from './reporter.js';

export type { Reporter, StepHandle, ProgressMode } from './reporter.js';

/** ora is loaded only for a terminal: plain and quiet runs (CI, scripts) never pay for it. */
export async function createReporter(mode: ProgressMode): Promise<Reporter> {
  switch (resolveMode(mode)) {
    case 'tty': {
      const [{ TtyReporter }, { default: ora }] = await Promise.all([import('./tty.js'), import('ora')]);
      return new TtyReporter(ora);
    }
    case 'quiet':
      return new QuietReporter();
    default:
      return new PlainReporter();
  }
}
