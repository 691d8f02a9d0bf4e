/**
 * What the kernel says about a process and the machine (Linux /proc): peak and current resident
 * memory, CPU time used, and how busy all cores were. The benchmark reads these from outside the
 * measured processes, so measuring costs them nothing.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, release, totalmem } from 'node:os';
import { APP_ROOT } from '../src/app-root';

export interface MemoryStatus {
  /** VmHWM: the peak resident set size since the process started. */
  readonly peakResidentBytes: number;
  /** VmRSS: resident now. */
  readonly residentBytes: number;
}

export function memoryStatus(pid: number): MemoryStatus {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kibibytes = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
    if (!match?.[1]) throw new Error(`/proc/${pid}/status has no ${field} line`);
    return Number(match[1]) * 1024;
  };
  return { peakResidentBytes: kibibytes('VmHWM'), residentBytes: kibibytes('VmRSS') };
}

let clockTicksPerSecond: number | undefined;

/** USER_HZ, the unit of the CPU times in /proc (100 on every mainstream Linux, but asked, not assumed). */
function ticksPerSecond(): number {
  if (clockTicksPerSecond === undefined) {
    try {
      clockTicksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicksPerSecond = 100;
    }
  }
  return clockTicksPerSecond;
}

/** User + system CPU time the process has used so far, in milliseconds. */
export function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces; the numeric fields start after its closing paren.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const userTicks = Number(fields[11]);
  const systemTicks = Number(fields[12]);
  return ((userTicks + systemTicks) * 1000) / ticksPerSecond();
}

export interface MachineCpuSample {
  readonly busyTicks: number;
  readonly totalTicks: number;
}

export function machineCpuSample(): MachineCpuSample {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  const idleTicks = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  const totalTicks = ticks.slice(0, 8).reduce((sum, value) => sum + value, 0);
  return { busyTicks: totalTicks - idleTicks, totalTicks };
}

/** Share of all cores' time that was busy between two samples, 0..1. */
export function machineBusyFraction(before: MachineCpuSample, after: MachineCpuSample): number {
  const total = after.totalTicks - before.totalTicks;
  return total > 0 ? (after.busyTicks - before.busyTicks) / total : 0;
}

export interface MachineDescription {
  /** What `nproc` prints: the CPUs this process may run on. */
  readonly logicalCpus: number;
  readonly cpuModel: string;
  readonly memoryBytes: number;
  readonly kernel: string;
  readonly node: string;
}

export function describeMachine(): MachineDescription {
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpuModel;
  } catch {
    // Not Linux: os.cpus() is the best we have.
  }
  return {
    logicalCpus: availableParallelism(),
    cpuModel,
    memoryBytes: totalmem(),
    kernel: release(),
    node: process.version,
  };
}

export interface ResidentMemorySampler {
  /** From now on, samples count toward `name`. */
  enter(phase: string): void;
  /** Stops sampling; the largest VmRSS seen in each phase, in bytes. */
  stop(): Record<string, number>;
}

/**
 * Polls VmRSS every `intervalMs` and keeps the maximum per phase, to tell a start-up peak from a
 * peak under load (VmHWM alone cannot say when it was reached).
 */
export function sampleResidentMemory(pid: number, intervalMs = 100): ResidentMemorySampler {
  const peaks: Record<string, number> = {};
  let phase = 'start-up';
  const sample = () => {
    try {
      peaks[phase] = Math.max(peaks[phase] ?? 0, memoryStatus(pid).residentBytes);
    } catch {
      // The process is gone; stop() still reports what was seen.
    }
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  timer.unref();
  return {
    enter(next) {
      sample();
      phase = next;
      sample();
    },
    stop() {
      clearInterval(timer);
      sample();
      return peaks;
    },
  };
}

/** The commit measured, marked when src/ has changes not committed (so a result is never credited to the wrong code). */
export function gitCommit(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: APP_ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    const dirty =
      execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', 'src'], {
        cwd: APP_ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim() !== '';
    return dirty ? `${commit}+uncommitted-src-changes` : commit;
  } catch {
    return 'unknown';
  }
}
