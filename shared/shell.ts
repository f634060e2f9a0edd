/** Words as bash reads them back unchanged: one quoting rule for the builder's .release lines and the runner's commands. */

/** A word as bash reads it back unchanged. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Words as a command line that runs exactly them, whatever they contain. */
export function quoteWords(words: readonly string[]): string {
  return words.map(shellQuote).join(' ');
}
