-- The store's tables. Every table keeps the key and the exact bytes the
-- gateway wrote (`value`); where a query or a constraint needs a field,
-- it is a typed column too (the audit log's fields, a membership's user
-- and group). Keys sort bytewise (COLLATE "C"), as
-- on every other backend, so a prefix is a range of the primary key
-- (users by id prefix, a group's members, a user's groups).

CREATE TABLE users (
    key text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE groups (
    key text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

-- `group/user`: a membership. Deleting the group or the user deletes it;
-- one naming a group or user that does not exist is refused at commit.
CREATE TABLE members (
    key text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL,
    group_id text COLLATE "C" NOT NULL GENERATED ALWAYS AS (split_part(key, '/', 1)) STORED
        REFERENCES groups (key) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    user_id text COLLATE "C" NOT NULL GENERATED ALWAYS AS (split_part(key, '/', 2)) STORED
        REFERENCES users (key) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX members_by_user ON members (user_id);

-- `user/group`: the same membership, found from the user.
CREATE TABLE user_groups (
    key text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL,
    user_id text COLLATE "C" NOT NULL GENERATED ALWAYS AS (split_part(key, '/', 1)) STORED
        REFERENCES users (key) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    group_id text COLLATE "C" NOT NULL GENERATED ALWAYS AS (split_part(key, '/', 2)) STORED
        REFERENCES groups (key) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX user_groups_by_group ON user_groups (group_id);

CREATE TABLE keys (
    key text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE bans (
    key text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE revocations (
    key text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

-- Keyed by the zero-padded id: key order is id order. The node fills the
-- typed columns from the record it writes (parsing JSON once in the node
-- is far cheaper than four generated columns parsing it in the server).
CREATE TABLE audit (
    key text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL,
    at bigint NOT NULL,
    actor text COLLATE "C" NOT NULL,
    action text COLLATE "C" NOT NULL,
    target text COLLATE "C" NOT NULL
);
CREATE INDEX audit_by_time ON audit (at, key);
CREATE INDEX audit_by_actor ON audit (actor, key);
CREATE INDEX audit_by_action ON audit (action, key);
CREATE INDEX audit_by_target ON audit (target, key);

-- `key id/idempotency key` → the response kept for a retry.
CREATE TABLE idempotency (
    key text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE jobs (
    key text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

-- `job id/zero-padded line` → one failed item of a job.
CREATE TABLE job_failures (
    key text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

-- The policy document and the counters (`counter/<name>`, decimal text).
CREATE TABLE meta (
    key text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);
