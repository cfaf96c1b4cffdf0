/**
 * REST helper for the server extension's API under `/mlp-kernel/api/` (docs/rest-api.md), as in the
 * JupyterLab extension template. ServerConnection adds the token/XSRF headers jupyter_server requires.
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** An API error: HTTP status, the server's message, and the issues (line, field) it pointed at. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly issues: IIssue[] = []
  ) {
    super(message);
  }
}

export interface IIssue {
  message: string;
  line?: number | null;
  field?: string | null;
  severity?: 'error' | 'warning';
}

export async function requestAPI<T>(endPoint = '', init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'mlp-kernel', 'api', endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: any = text;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      // not JSON: keep the text for the message
    }
  }
  if (!response.ok) {
    const message = (data && data.message) || (typeof data === 'string' && data) || response.statusText;
    throw new ApiError(response.status, message, (data && data.issues) || []);
  }
  return data as T;
}

export function postJSON<T>(endPoint: string, body: unknown, method = 'POST'): Promise<T> {
  return requestAPI<T>(endPoint, { method, body: JSON.stringify(body) });
}
