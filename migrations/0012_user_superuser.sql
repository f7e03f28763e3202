-- Instance administrators (README "Accounts and access"): Sentry's
-- `User.is_superuser` (getsentry/sentry src/sentry/users/models/user.py).
-- A signed-in superuser reaches what an instance-admin token reaches at the
-- instance level: `/api/0/internal/` and the pages under `/manage/` (the
-- fleet). Granted by `sluice users set-superuser` or `users create
-- --superuser`, and to the first owner `npm start` sets up. A constant
-- default: no table rewrite. Older releases never read it.
ALTER TABLE users ADD COLUMN IF NOT EXISTS is_superuser boolean NOT NULL DEFAULT false;
