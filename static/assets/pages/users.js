// Users (admins): create, change role, reset a password, disable, delete.

import { api } from '/assets/api.js';
import { badge, confirmDialog, el, field, formDialog, pagerButtons, reason, select, table, when } from '/assets/ui.js';

// Users per page.
const PAGE = 50;

const ROLES = [['user', 'User'], ['admin', 'Admin']];

export default {
  path: '/users',
  title: 'Users',
  admin: true,
  mount(root, app) {
    const list = el('div', { class: 'list' });
    const error = el('p', { class: 'error', role: 'alert' });
    const pager = el('div', { class: 'pager' });
    // Cursors of the pages shown so far: "Previous" goes back one.
    const cursors = [''];
    const change = (user, body) => api(`/api/v1/users/${user.id}`, { method: 'PATCH', body }).then(load, (e) => {
      error.textContent = reason(e);
      load();
    });
    const load = async () => {
      try {
        const after = cursors.at(-1);
        const { users, next_after: next } = await api(`/api/v1/users?limit=${PAGE}${after ? `&after=${encodeURIComponent(after)}` : ''}`);
        pager.replaceChildren(...pagerButtons(cursors, next, load));
        list.replaceChildren(table(['User', 'Role', 'Status', 'Created', ''], users.map((u) => {
          const self = u.id === app.me.id;
          const role = select('role', ROLES, u.role, { 'aria-label': `Role of ${u.username}`, ...(self ? { disabled: '' } : {}) });
          role.addEventListener('change', () => change(u, { role: role.value }));
          return {
            attributes: { 'data-user': u.username },
            cells: [
              el('strong', {}, u.username, self ? ' (you)' : ''),
              role,
              badge(u.disabled ? 'disabled' : 'active'),
              when(u.created_at),
              el('span', { class: 'row-actions' },
                el('button', { type: 'button', class: 'secondary small', onclick: () => formDialog(`Reset ${u.username}'s password`, [
                  field('New password', el('input', { name: 'password', type: 'password', required: '', minlength: '8', autocomplete: 'new-password', autofocus: '' }), 'At least 8 characters. Their sign-ins end.'),
                ], (form) => api(`/api/v1/users/${u.id}`, { method: 'PATCH', body: { password: form.get('password') } }).then(() => true), { action: 'Reset password' }) }, 'Reset password'),
                self ? '' : el('button', { type: 'button', class: 'secondary small', onclick: async () => {
                  if (!u.disabled && !await confirmDialog(`Disable ${u.username}?`, 'They are signed out and their open desktop viewers close at once. Their desktops keep running.', 'Disable')) return;
                  change(u, { disabled: !u.disabled });
                } }, u.disabled ? 'Enable' : 'Disable'),
                self ? '' : el('button', { type: 'button', class: 'danger small', onclick: async () => {
                  if (!await confirmDialog(`Delete ${u.username}?`, 'Their account and their ended sessions are deleted; the audit log keeps their name. A user with active desktops or homes cannot be deleted until those are gone.', 'Delete user')) return;
                  api(`/api/v1/users/${u.id}`, { method: 'DELETE' }).then(load, (e) => { error.textContent = reason(e); });
                } }, 'Delete')),
            ],
          };
        }), 'No users.'));
      } catch (e) {
        if (e.status === 401) return app.expired();
        error.textContent = reason(e);
      }
    };
    const create = () => formDialog('New user', [
      field('User name', el('input', { name: 'username', required: '', autocomplete: 'off', autofocus: '' })),
      field('Password', el('input', { name: 'password', type: 'password', required: '', minlength: '8', autocomplete: 'new-password' }), 'At least 8 characters.'),
      field('Role', select('role', ROLES, 'user')),
    ], (form) => api('/api/v1/users', { method: 'POST', body: Object.fromEntries(form) }).then(() => true), { action: 'Create user' })
      .then((created) => created && load());
    root.append(el('div', { class: 'toolbar' }, el('button', { type: 'button', class: 'push', onclick: create }, 'New user')), error, list, pager);
    load();
    return {};
  },
};
