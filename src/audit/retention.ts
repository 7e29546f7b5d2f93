import { statSync, unlinkSync } from 'node:fs';
import { fsyncDir } from './audit-fs.js';
import { removeSidecar } from './block-index.js';
import { listAuditFiles, readFirstLine, type AuditFile } from './files.js';

export interface RetentionPolicy {
  /** Keep at most this many rotated files. */
  retainFiles?: number | undefined;
  /** Delete rotated files whose last record is older than this many days. */
  retainDays?: number | undefined;
}

/** What retention would delete now, and the `audit.retention` record that must be durable first. */
export interface RetentionPlan {
  drop: AuditFile[];
  record: Record<string, unknown> & { event: 'audit.retention'; keptFromSeq: number };
}

/**
 * The oldest rotated files beyond `retainFiles` / older than `retainDays`,
 * and the record naming where the kept chain starts (seq and prev), so verify
 * knows the start is legitimate. Undefined when nothing is to be deleted.
 */
export function retentionPlan(dir: string, policy: RetentionPolicy, now: Date): RetentionPlan | undefined {
  const { retainFiles, retainDays } = policy;
  const files = listAuditFiles(dir);
  const rotated = files.filter((f) => !f.current);
  const cutoff = now.getTime() - (retainDays ?? 0) * 86_400_000;
  const drop: AuditFile[] = [];
  for (const [i, f] of rotated.entries()) {
    const tooMany = retainFiles !== undefined && rotated.length - i > retainFiles;
    const tooOld = retainDays !== undefined && statSync(f.path).mtimeMs < cutoff;
    if (!tooMany && !tooOld) break;
    drop.push(f);
  }
  const kept = files[drop.length];
  if (drop.length === 0 || !kept) return undefined;
  const firstLine = readFirstLine(kept.path);
  if (firstLine === undefined) return undefined;
  const first = JSON.parse(firstLine) as { seq: number; prev: string };
  return {
    drop,
    record: {
      event: 'audit.retention',
      deleted: drop.map((f) => ({ file: f.name, firstSeq: f.firstSeq, bytes: f.size })),
      keptFromSeq: first.seq,
      keptFromPrev: first.prev,
      policy: { ...(retainFiles !== undefined ? { files: retainFiles } : {}), ...(retainDays !== undefined ? { days: retainDays } : {}) },
    },
  };
}

/** Deletes the planned files (after their record is durable). */
export function deleteRotated(dir: string, drop: readonly AuditFile[]): void {
  for (const f of drop) {
    unlinkSync(f.path);
    removeSidecar(f.path);
  }
  fsyncDir(dir);
}
