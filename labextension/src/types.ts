/**
 * The `mlp_kernel.status` comm protocol (docs/status-comm.md), as TypeScript types.
 * The gateway kernel is the only writer; the extension only reads snapshots and sends actions.
 */

export const COMM_TARGET = 'mlp_kernel.status';

export type KernelState =
  | 'cpu_only'
  | 'placing'
  | 'queued'
  | 'starting'
  | 'running'
  | 'releasing'
  | 'released'
  | 'error';

export interface IQueueInfo {
  local_queue?: string | null;
  position?: number | null;
  eta_s?: number | null;
  reason?: string | null;
}

export interface IRuleResult {
  rule: string;
  inputs?: Record<string, unknown>;
  result: string;
  detail?: string;
}

export interface IDecision {
  action: string;
  member?: string | null;
  flavor?: string | null;
  summary?: string;
  price_per_hour?: number;
  expected_wait_s?: number | null;
  explanation?: IRuleResult[];
}

export interface IChoices {
  gpu_models?: string[];
  tiers?: string[];
  burst_allowed?: boolean;
}

export interface IStatus {
  type: 'status';
  version: number;
  kernel_id?: string;
  state: KernelState;
  phase?: string | null;
  message?: string;
  member?: string | null;
  flavor?: string | null;
  gpu_model?: string | null;
  gpu_count?: number;
  public?: boolean;
  since?: string | null;
  queue?: IQueueInfo | null;
  price_per_hour?: number;
  cost_so_far?: number;
  idle_timeout_s?: number;
  idle_limit_s?: number | null;
  idle_rule?: string;
  idle_deadline?: string | null;
  busy?: boolean;
  last_release?: { reason?: string; at?: string; idle_s?: number; message?: string } | null;
  decision?: IDecision | null;
  request?: Record<string, unknown> | null;
  choices?: IChoices;
}

export type EventKind = 'burst' | 'released' | 'evicted' | 'preempted' | 'error' | 'started';

export interface IStatusEvent {
  type: 'event';
  kind: EventKind;
  message: string;
  at?: string;
}

export interface IStatusError {
  type: 'error';
  message: string;
}

export type StatusMessage = IStatus | IStatusEvent | IStatusError;

/** Actions the extension sends to the gateway on the status comm. */
export type StatusAction =
  | { action: 'refresh' }
  | { action: 'release' }
  | { action: 'request'; options: string };
