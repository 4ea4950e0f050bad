"""The PostgreSQL ledger's defences, as migrations: the events' hash chain computed by the
database itself, pruning only behind an anchor (see agent/ledger/chain.py for the contract), and
the approval functions through which approvers' login roles approve as themselves.

`agent.ledger.postgres` appends these to its MIGRATIONS. They run as the owner role (the one
that runs `hemostat ledger migrate`); the daemon's role owns nothing and cannot alter them.
Functions that run with the owner's rights pin `search_path` to the ledger's schema and put
`pg_temp` last, so a caller's temporary table can never stand in for a ledger table.
"""

from __future__ import annotations

import hashlib


def advisory_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for `name` (advisory locks are per database)."""
    return int.from_bytes(hashlib.sha256(f"hemostat:{name}".encode()).digest()[:8], "big", signed=True)


EVENTS_LOCK = advisory_key("events")  # taken by every append: seq order = commit order = chain order

# v5: chain every event (existing ones as they stand), and let only an anchored prefix be deleted.
CHAIN = """
    ALTER TABLE events ADD COLUMN hash text;
    CREATE TABLE ledger_anchors (
        through_seq bigint PRIMARY KEY, hash text NOT NULL, at timestamptz NOT NULL,
        pruned integer NOT NULL
    );
    CREATE FUNCTION hemostat_chain_field(value text) RETURNS text LANGUAGE sql IMMUTABLE
        AS $$ SELECT CASE WHEN value IS NULL THEN '~' ELSE length(value) || ':' || value END $$;
    CREATE FUNCTION hemostat_event_hash(prev text, e events) RETURNS text LANGUAGE sql STABLE AS $$
        SELECT encode(sha256(convert_to(concat_ws('|',
            hemostat_chain_field(prev), hemostat_chain_field(e.seq::text),
            hemostat_chain_field(to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')),
            hemostat_chain_field(e.type), hemostat_chain_field(e.actor),
            hemostat_chain_field(e.incident_id), hemostat_chain_field(e.proposal_id),
            hemostat_chain_field(e.data::text)), 'UTF8')), 'hex') $$;
    ALTER TABLE events DISABLE TRIGGER events_no_change;
    DO $$ DECLARE r events; prev text := ''; BEGIN
        FOR r IN SELECT * FROM events ORDER BY seq LOOP
            prev := hemostat_event_hash(prev, r);
            UPDATE events SET hash = prev WHERE seq = r.seq;
        END LOOP;
    END $$;
    ALTER TABLE events ENABLE TRIGGER events_no_change;
    ALTER TABLE events ALTER COLUMN hash SET NOT NULL;
    CREATE FUNCTION events_chain() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
    DECLARE last_seq bigint; last_hash text;
    BEGIN
        PERFORM pg_advisory_xact_lock(EVENTS_LOCK);
        SELECT seq, hash INTO last_seq, last_hash FROM events ORDER BY seq DESC LIMIT 1;
        IF NOT FOUND THEN
            SELECT through_seq, hash INTO last_seq, last_hash
                FROM ledger_anchors ORDER BY through_seq DESC LIMIT 1;
        END IF;
        IF NEW.seq <= coalesce(last_seq, 0) THEN  -- its seq was drawn before the lock was taken
            RAISE EXCEPTION 'event % would follow event %: take the events lock before appending',
                NEW.seq, last_seq;
        END IF;
        NEW.hash := hemostat_event_hash(coalesce(last_hash, ''), NEW);
        RETURN NEW;
    END $$;
    CREATE TRIGGER events_chain BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION events_chain();
    CREATE OR REPLACE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM ledger_anchors WHERE through_seq >= OLD.seq) THEN
            RETURN OLD;  -- pruning behind an anchor (SqlLedger.prune_through)
        END IF;
        RAISE EXCEPTION 'events are append-only';
    END $$;
    CREATE FUNCTION ledger_anchors_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'ledger anchors are append-only'; END $$;
    CREATE TRIGGER ledger_anchors_no_change BEFORE UPDATE OR DELETE ON ledger_anchors
        FOR EACH ROW EXECUTE FUNCTION ledger_anchors_append_only();
    CREATE TRIGGER ledger_anchors_no_truncate BEFORE TRUNCATE ON ledger_anchors
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_anchors_append_only();
    DO $$ BEGIN
        EXECUTE format('ALTER FUNCTION events_chain() SET search_path = %I, pg_temp', current_schema());
    END $$;
""".replace("EVENTS_LOCK", str(EVENTS_LOCK))

# v6: approving through the shared ledger: the only way an approver's role touches it. The functions
# run as the owner but record `session_user` (the login PostgreSQL authenticated, which no
# SET ROLE changes) as the approver, with the roles it belongs to as its groups.
APPROVAL_FUNCTIONS = r"""
    CREATE FUNCTION hemostat_subject(name text) RETURNS text LANGUAGE sql IMMUTABLE
        AS $$ SELECT lower(regexp_replace(btrim(normalize(name, NFKC)), '\s+', ' ', 'g')) $$;
    CREATE FUNCTION hemostat_login_identity() RETURNS jsonb LANGUAGE sql STABLE AS $$
        SELECT jsonb_build_object('source', 'postgres', 'subject', hemostat_subject(session_user),
            'name', session_user::text, 'uid', '', 'groups', (
                SELECT coalesce(jsonb_agg(r.rolname::text ORDER BY r.rolname), '[]'::jsonb)
                FROM pg_roles r WHERE r.rolname <> session_user AND r.rolname NOT LIKE 'pg\_%'
                AND pg_has_role(session_user, r.oid, 'MEMBER'))) $$;
    CREATE FUNCTION hemostat_proposal_for_update(ref text) RETURNS proposals LANGUAGE plpgsql AS $$
    DECLARE p proposals; matches integer;
    BEGIN
        IF ref IS NULL OR ref !~ '^[a-z0-9-]{1,80}$' THEN
            RAISE EXCEPTION 'not a proposal id: %', left(coalesce(ref, ''), 80);
        END IF;
        SELECT * INTO p FROM proposals WHERE id = ref FOR UPDATE;
        IF FOUND THEN RETURN p; END IF;
        SELECT count(*) INTO matches FROM proposals WHERE id LIKE ref || '%';
        IF matches <> 1 THEN
            RAISE EXCEPTION '% proposal matches %',
                CASE WHEN matches = 0 THEN 'no' ELSE 'more than one' END, ref;
        END IF;
        SELECT * INTO p FROM proposals WHERE id LIKE ref || '%' FOR UPDATE;
        RETURN p;
    END $$;
    CREATE FUNCTION hemostat_approve(ref text) RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER AS $$
    DECLARE p proposals; who jsonb := hemostat_login_identity(); at timestamptz := clock_timestamp();
            n integer; needed integer;
    BEGIN
        PERFORM pg_advisory_xact_lock(EVENTS_LOCK);
        p := hemostat_proposal_for_update(ref);
        IF p.state <> 'proposed' THEN
            RAISE EXCEPTION 'proposal % is %; only proposed can be approved', p.id, p.state;
        END IF;
        IF p.expires_at IS NOT NULL AND at >= p.expires_at THEN
            RAISE EXCEPTION 'proposal % expired at %', p.id,
                to_char(p.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI"Z"');
        END IF;
        IF who->>'subject' IN (hemostat_subject(p.proposal->>'proposer'),
                               hemostat_subject(coalesce(p.proposal->>'triggered_by', ''))) THEN
            RAISE EXCEPTION '% proposed % and cannot also approve it (separation of duties)',
                session_user, p.id;
        END IF;
        IF EXISTS (SELECT 1 FROM approvals WHERE proposal_id = p.id AND subject = who->>'subject') THEN
            RAISE EXCEPTION '% has already approved % (one person counts once)', session_user, p.id;
        END IF;
        INSERT INTO approvals (proposal_id, actor, at, source, subject, display_name, groups, uid)
            VALUES (p.id, who->>'subject', at, 'postgres', who->>'subject', who->>'name', who->'groups', '');
        SELECT count(*) INTO n FROM approvals WHERE proposal_id = p.id;
        needed := greatest(1, coalesce((p.verdict->>'approvals_required')::integer, 0));
        INSERT INTO events (at, type, actor, incident_id, proposal_id, data) VALUES (at, 'approval',
            who->>'name', p.incident_id, p.id,
            jsonb_build_object('approvals', n, 'needed', needed, 'identity', who));
        IF n >= needed THEN
            UPDATE proposals SET state = 'approved', updated_at = at WHERE id = p.id;
            INSERT INTO events (at, type, actor, incident_id, proposal_id, data) VALUES (at,
                'proposal_approved', who->>'name', p.incident_id, p.id, '{"from": "proposed"}');
        END IF;
        RETURN jsonb_build_object('id', p.id, 'action', p.action, 'subject', p.proposal->>'subject',
            'state', CASE WHEN n >= needed THEN 'approved' ELSE 'proposed' END, 'approvals', n,
            'needed', needed, 'identity', who, 'proposers', (SELECT jsonb_agg(x) FROM unnest(ARRAY[
                p.proposal->>'proposer', p.proposal->>'triggered_by']) AS x WHERE x IS NOT NULL));
    END $$;
    CREATE FUNCTION hemostat_reject(ref text, reason text) RETURNS jsonb LANGUAGE plpgsql
        SECURITY DEFINER AS $$
    DECLARE p proposals; who jsonb := hemostat_login_identity(); at timestamptz := clock_timestamp();
    BEGIN
        IF coalesce(btrim(reason), '') = '' THEN
            RAISE EXCEPTION 'a rejection needs a reason';
        END IF;
        PERFORM pg_advisory_xact_lock(EVENTS_LOCK);
        p := hemostat_proposal_for_update(ref);
        IF p.state NOT IN ('proposed', 'approved') THEN
            RAISE EXCEPTION 'cannot go from % to rejected', p.state;
        END IF;
        UPDATE proposals SET state = 'rejected', updated_at = at WHERE id = p.id;
        INSERT INTO events (at, type, actor, incident_id, proposal_id, data) VALUES (at,
            'proposal_rejected', who->>'name', p.incident_id, p.id, jsonb_build_object(
                'from', p.state, 'reason', left(reason, 500), 'identity', who));
        RETURN jsonb_build_object('id', p.id, 'action', p.action, 'subject', p.proposal->>'subject',
            'state', 'rejected', 'identity', who);
    END $$;
    DO $$ DECLARE f text; BEGIN
        FOREACH f IN ARRAY ARRAY['hemostat_approve(text)', 'hemostat_reject(text, text)'] LOOP
            EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp', f, current_schema());
            EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        END LOOP;
    END $$;
""".replace("EVENTS_LOCK", str(EVENTS_LOCK))

# v7: what the runtime role may not append (issue 23, H3). A seq it chose (INSERT ... OVERRIDING
# SYSTEM VALUE with seq 1000000 made every later append fail), and an approval in an approver's
# PostgreSQL login's name (only hemostat_approve(), running as the owner, records those). Not
# SECURITY DEFINER: it must see the caller as `current_user`.
EVENT_GUARD = """
    CREATE FUNCTION events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE owner name; drawn bigint;
    BEGIN
        SELECT tableowner INTO owner FROM pg_tables
            WHERE schemaname = TG_TABLE_SCHEMA AND tablename = TG_TABLE_NAME;
        IF current_user = owner THEN RETURN NEW; END IF;
        BEGIN
            drawn := currval(pg_get_serial_sequence(format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME), 'seq'));
        EXCEPTION WHEN object_not_in_prerequisite_state THEN drawn := NULL;
        END;
        IF drawn IS DISTINCT FROM NEW.seq THEN
            RAISE EXCEPTION 'event seq % was not drawn from the ledger''s sequence: a chosen seq '
                '(OVERRIDING SYSTEM VALUE) is refused', NEW.seq;
        END IF;
        IF NEW.type IN ('approval', 'revert_approval')
                AND NEW.data->'identity'->>'source' = 'postgres' THEN
            RAISE EXCEPTION 'only hemostat_approve() records an approval by a PostgreSQL login';
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER events_guard BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION events_guard();
"""
