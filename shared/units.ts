/** Human sizes and durations, read from the command line ("500M", "1G", "15m", "90s") and printed in logs. */
import { UsageError } from './errors.js';

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 };

export function parseSize(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim());
  const unit = m ? SIZE_UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new UsageError(`${flag} expects a size like 500M or 2G, got "${value}"`);
  return Math.floor(Number(m[1]) * unit);
}

const TIME_UNITS: Record<string, number> = { '': 1000, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([smh]?)$/i.exec(value.trim());
  if (!m) throw new UsageError(`${flag} expects a duration like 900, 90s or 15m, got "${value}"`);
  const ms = Number(m[1]) * TIME_UNITS[m[2].toLowerCase()];
  if (!(ms > 0)) throw new UsageError(`${flag} must be greater than zero`);
  return ms;
}

export function parseCount(value: string, flag: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n <= 0)
    throw new UsageError(`${flag} expects a positive whole number, got "${value}"`);
  return n;
}

/** A byte count as the logs print it: 7B, 1.5K, 12.0M, 2.1G. */
export function formatSize(bytes: number): string {
  if (bytes >= 1024 * 1024 * 1024) return `${(bytes / 1024 ** 3).toFixed(1)}G`;
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 ** 2).toFixed(1)}M`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)}K`;
  return `${bytes}B`;
}

/** A timeout as the logs print it: "15 minutes", "90 s". */
export function formatDuration(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000} minute${ms === 60_000 ? '' : 's'}`;
  return `${Math.round(ms / 1000)} s`;
}

/** "1 layer", "2 layers": a count with its noun. */
export function plural(count: number, noun: string, nouns = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : nouns}`;
}
