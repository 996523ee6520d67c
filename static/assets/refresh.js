// Auto-refresh for a page: a labelled choice (off, 5, 10, 30 s), remembered per page, that
// calls `refresh` on a timer. Refreshing replaces the page's data in place, so filters, the
// scroll position and open dialogs stay as they are.

import { el, field, select } from '/assets/ui.js';

const CHOICES = [['0', 'Off'], ['5', 'Every 5 s'], ['10', 'Every 10 s'], ['30', 'Every 30 s']];

export function autoRefresh(page, refresh, seconds = 10) {
  const key = `streamspace.refresh.${page}`;
  const stored = localStorage.getItem(key);
  let every = stored === null ? seconds : Number(stored);
  let timer = null;
  const arm = () => {
    clearInterval(timer);
    timer = every > 0 ? setInterval(refresh, every * 1000) : null;
  };
  const control = select('refresh', CHOICES, String(every), { 'data-refresh': page });
  control.addEventListener('change', () => {
    every = Number(control.value);
    localStorage.setItem(key, String(every));
    arm();
  });
  arm();
  return {
    control: field('Auto-refresh', control),
    stop: () => clearInterval(timer),
    /** A status line saying when the data was last loaded. */
    stamp: el('p', { class: 'stamp', 'aria-live': 'polite' }),
  };
}
