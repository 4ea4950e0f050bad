"""The PostgreSQL ledger's defences, as migrations: the events' hash chain computed by the
database itself, and pruning only behind an anchor (see agent/ledger/chain.py for the contract).

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

# v3: chain every event (existing ones as they stand), and let only an anchored prefix be deleted.
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
