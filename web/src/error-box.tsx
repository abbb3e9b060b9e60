/** An error by name, its message and what to do about it. */
import type { ExplainedError } from './error-help.ts';

export function ErrorBox({ error, onDismiss }: { error: ExplainedError; onDismiss?: () => void }) {
  return (
    <div class="error" role="alert">
      <p>
        <strong data-testid="error-name">{error.name}</strong>: {error.message}
      </p>
      <p class="advice">{error.advice}</p>
      {onDismiss && (
        <button type="button" class="small" onClick={onDismiss}>
          Dismiss
        </button>
      )}
    </div>
  );
}
