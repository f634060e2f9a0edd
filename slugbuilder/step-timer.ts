/**
 * How long each build step took, for the line at the end of the build log:
 * `mark(name)` ends the step that began at the previous mark (or at start).
 */
export class StepTimer {
  private last = performance.now();
  private readonly first = this.last;
  private readonly steps: Array<[string, number]> = [];

  mark(name: string): void {
    const now = performance.now();
    this.steps.push([name, now - this.last]);
    this.last = now;
  }

  /** "source 0.1s, detect 0.0s, compile 12.3s, ... (total 13.0s)" */
  summary(): string {
    const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
    return `${this.steps.map(([name, ms]) => `${name} ${secs(ms)}`).join(', ')} (total ${secs(this.last - this.first)})`;
  }
}
