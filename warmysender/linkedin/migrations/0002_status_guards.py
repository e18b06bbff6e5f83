"""Database-enforced rules for LinkedIn account status (seed 002, LL#246).

1. The audit table stamps every row with the current transaction id itself (a client cannot
   forge an old one) and refuses to be rewritten.
2. A status change on an account (UPDATE of status, or an INSERT with any status but
   `connecting`) is refused unless an audit row for that account, with the same from/to
   statuses, was written in the same transaction. `services.flip_account_status` writes it
   first; a raw UPDATE fails loudly.

The CHECK constraints (no split state, connected ⇔ no disconnect timestamp) are in 0001.
"""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION linkedin_audit_stamp_txid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.txid := txid_current();
    RETURN NEW;
END;
$$;

CREATE TRIGGER linkedin_audit_stamp_txid
    BEFORE INSERT ON linkedin_linkedinaccountaudit
    FOR EACH ROW EXECUTE FUNCTION linkedin_audit_stamp_txid();

CREATE FUNCTION linkedin_audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'linkedin_linkedinaccountaudit is append-only'
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;

CREATE TRIGGER linkedin_audit_is_append_only
    BEFORE UPDATE ON linkedin_linkedinaccountaudit
    FOR EACH ROW EXECUTE FUNCTION linkedin_audit_is_append_only();

CREATE FUNCTION linkedin_account_status_needs_audit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_status text := CASE WHEN TG_OP = 'INSERT' THEN '' ELSE OLD.status END;
BEGIN
    IF TG_OP = 'INSERT' AND NEW.status = 'connecting' THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.status IS NOT DISTINCT FROM OLD.status THEN
        RETURN NEW;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM linkedin_linkedinaccountaudit a
        WHERE a.account_id = NEW.id
          AND a.txid = txid_current()
          AND a.action = 'status_changed'
          AND a.from_status = old_status
          AND a.to_status = NEW.status
    ) THEN
        RAISE EXCEPTION
            'LinkedIn account % status change % -> % has no paired audit row in this transaction; use services.flip_account_status',
            NEW.id, NULLIF(old_status, ''), NEW.status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER linkedin_account_status_needs_audit
    BEFORE INSERT OR UPDATE OF status ON linkedin_linkedinaccount
    FOR EACH ROW EXECUTE FUNCTION linkedin_account_status_needs_audit();
"""

BACKWARD = r"""
DROP TRIGGER linkedin_account_status_needs_audit ON linkedin_linkedinaccount;
DROP FUNCTION linkedin_account_status_needs_audit();
DROP TRIGGER linkedin_audit_is_append_only ON linkedin_linkedinaccountaudit;
DROP FUNCTION linkedin_audit_is_append_only();
DROP TRIGGER linkedin_audit_stamp_txid ON linkedin_linkedinaccountaudit;
DROP FUNCTION linkedin_audit_stamp_txid();
"""


class Migration(migrations.Migration):
    dependencies = [("linkedin", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
