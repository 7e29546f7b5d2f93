/**
 * bench/RESULTS.md: the tables of this run merged into the file's earlier
 * content, so that `--only X` replaces section X and keeps the others. A
 * section is found by its heading: `### N.` (or `### Na.`) where N is its
 * position in the section list, or `### name` (a failed section). The header
 * lists each run whose tables are still in the file, and which.
 */

const PREAMBLE =
  'Paths being compared are measured in the same run, interleaved; read the ratios and differences, not the absolute times (the machine is shared and noisy). ' +
  'Written by bench/run.ts; do not edit by hand.';

export interface MergeInput<S extends string> {
  /** The file as it was (undefined: none yet). */
  previous: string | undefined;
  /** Every section, in file order (their positions number the headings). */
  sections: readonly S[];
  /** This run's markdown per section it ran. */
  results: Partial<Record<S, string>>;
  /** "Run <iso> with `<command>` in <n> s" of this run. */
  run: string;
}

export function mergeResults<S extends string>(input: MergeInput<S>): string {
  const { sections, results } = input;
  const old = input.previous !== undefined ? parseSections(input.previous, sections) : new Map<S, string>();
  const ran = sections.filter((s) => results[s] !== undefined);
  const kept = sections.filter((s) => results[s] === undefined && old.has(s));
  const runs = [`- ${input.run}: ${ran.join(', ')}.`];
  for (const r of input.previous !== undefined ? parseRuns(input.previous, [...old.keys()]) : []) {
    const still = r.sections.filter((s) => kept.includes(s as S));
    if (still.length > 0) runs.push(`- ${r.run}: ${still.join(', ')}.`);
  }
  return [
    '# Gatehouse benchmarks — latest run',
    '',
    PREAMBLE,
    '',
    ...runs,
    '',
    ...sections.flatMap((s) => {
      const text = results[s] ?? old.get(s);
      return text === undefined ? [] : [text.trim(), ''];
    }),
  ].join('\n');
}

/** The file's sections by heading, each with its text (a section may have several headings: 2a, 2b). */
function parseSections<S extends string>(text: string, sections: readonly S[]): Map<S, string> {
  const out = new Map<S, string>();
  let current: S | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('### ')) {
      const m = /^### (?:(\d+)[a-z]?\.|(\w+)\s*$)/.exec(line);
      current = m?.[1] !== undefined ? sections[Number(m[1]) - 1] : sections.find((s) => s === m?.[2]);
    }
    if (current !== undefined) out.set(current, `${out.get(current) ?? ''}${line}\n`);
  }
  return out;
}

/** The runs the header names: "- Run … in N s: a, b." (or the single-run form "Run … in N s. …", which held every section in the file). */
function parseRuns(text: string, present: string[]): Array<{ run: string; sections: string[] }> {
  const out: Array<{ run: string; sections: string[] }> = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('### ')) break;
    const m = /^(?:- )?(Run \S+ with `[^`]*` in \d+ s)(?:: ([\w, ]+)\.|\.)/.exec(line);
    if (m?.[1] !== undefined) out.push({ run: m[1], sections: m[2] !== undefined ? m[2].split(',').map((s) => s.trim()) : present });
  }
  return out;
}
