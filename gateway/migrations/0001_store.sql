-- The store's tables. Every table keeps the key and the exact bytes the
-- gateway wrote (`value`); where a query or a constraint needs a field,
-- a typed column is generated from those bytes (the audit log's fields,
-- a membership's user and group). Keys sort bytewise (COLLATE "C"), as
-- on every other backend, so a prefix is a range of the primary key
-- (users by id prefix, a group's members, a user's groups).

-- A stored record as JSON. IMMUTABLE holds: the database's encoding is
-- fixed when it is created, and the conversion depends on nothing else.
CREATE FUNCTION tokenim_record(value bytea) RETURNS jsonb
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT convert_from(value, 'UTF8')::jsonb $$;

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

-- Keyed by the zero-padded id: key order is id order.
CREATE TABLE audit (
    key text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL,
    at bigint GENERATED ALWAYS AS ((tokenim_record(value) ->> 'time')::bigint) STORED,
    actor text COLLATE "C" GENERATED ALWAYS AS (tokenim_record(value) ->> 'actor') STORED,
    action text COLLATE "C" GENERATED ALWAYS AS (tokenim_record(value) ->> 'action') STORED,
    target text COLLATE "C" GENERATED ALWAYS AS (tokenim_record(value) ->> 'target') STORED
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
