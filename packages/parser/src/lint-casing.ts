// ConsistentInstructionCasing, the one build check that judges the whole file at once (every instruction
// against the casing most of them use) rather than during lint.ts's walk through the stages.
import type { Instruction } from './ast.js';
import type { Warn } from './lint-rules.js';

/** ConsistentInstructionCasing: each instruction against the casing most instructions use. */
export function consistentCasing(instructions: Instruction[], warn: Warn): void {
  let lower = 0;
  let upper = 0;
  for (const i of instructions) {
    if (i.cmd === i.cmd.toLowerCase()) lower++;
    else if (i.cmd === i.cmd.toUpperCase()) upper++;
  }
  const majorityLower = lower > upper;
  for (const i of instructions) {
    const casing =
      majorityLower && i.cmd !== i.cmd.toLowerCase()
        ? 'lowercase'
        : !majorityLower && i.cmd !== i.cmd.toUpperCase()
          ? 'uppercase'
          : '';
    if (casing)
      warn(
        'ConsistentInstructionCasing',
        `Command '${i.cmd}' should match the case of the command majority (${casing})`,
        i,
      );
  }
}
