"""Database rules: PostgreSQL itself refuses what would move money outside the rules.

A desktop application that talks straight to a shared database can be bypassed by anyone
holding a staff login and ``psql``. This revision adds triggers, owned by the schema owner,
that hold whatever the client sends (the group roles and grants are made by
``credits-desktop db roles``, ``store/db_roles.py``, since roles are cluster-wide and
follow the staff table):

* append-only: ledger entries, refunds, adjustments, reversals and audit events are never
  updated, deleted or truncated; an operation's ``result`` is written once;
* the acting staff member is taken from ``session_user`` (the database login), never from
  the client: ``operations``, ``ledger_entries``, ``audit_events`` and the requester and
  decider of ``approval_requests``; only period roll-over entries may carry the system
  actor;
* role and limits: who may refund how much, adjust purchased credits, decide a request,
  reverse, sell packages, charge usage, open plan periods (the permission table of the
  brief, with the limits read from the ``limits`` setting);
* no money without a ledger entry: deferred constraint triggers check at commit that each
  touched grant's ``remaining`` equals its ledger sum, each touched account's cached
  balances equal its grants, and each refund, adjustment, reversal and charge equals the
  ledger entries that carry it.

Every rule is skipped for a superuser and for the schema owner (migrations, the
maintenance commands, the demo loader), so they cost nothing there. SQLite has no logins:
the CHECK constraints of revision 0001 already cover amounts and remaining credits, so
this revision changes nothing on SQLite.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 02:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("ledger_entries", "refunds", "adjustments", "reversals", "audit_events")
HEADER = "LANGUAGE plpgsql SET search_path = pg_catalog, public"

FUNCTIONS: dict[str, str] = {}

# Whether the connected login is exempt: a superuser or the owner of the schema's tables.
FUNCTIONS["credits_is_owner()"] = f"""
RETURNS boolean {HEADER} STABLE AS $$
BEGIN
  RETURN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = session_user AND rolsuper)
      OR session_user = (SELECT pg_get_userbyid(c.relowner) FROM pg_class c
                         WHERE c.oid = 'public.ledger_entries'::regclass);
END $$"""

# The active staff member behind the login, or an error: no login acts for someone else.
FUNCTIONS["credits_me(OUT staff_id integer, OUT staff_role text)"] = f"""
{HEADER} STABLE AS $$
BEGIN
  SELECT s.id, s.role INTO staff_id, staff_role FROM staff s
   WHERE s.username = session_user::text AND s.active;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'The database login "%" is not an active staff member.', session_user
      USING ERRCODE = '42501';
  END IF;
END $$"""

FUNCTIONS["credits_limit(lim text, fallback integer)"] = f"""
RETURNS integer {HEADER} STABLE AS $$
DECLARE v text;
BEGIN
  SELECT value INTO v FROM settings WHERE key = 'limits';
  RETURN COALESCE((v::json ->> lim)::integer, fallback);
END $$"""

FUNCTIONS["credits_refuse(message text)"] = f"""
RETURNS void {HEADER} AS $$
BEGIN
  RAISE EXCEPTION '%', message USING ERRCODE = '42501';
END $$"""

# The operation a money row belongs to must be the login's own, of a known kind.
FUNCTIONS["credits_my_operation(op_id bigint, me integer)"] = f"""
RETURNS text {HEADER} STABLE AS $$
DECLARE k text; a integer;
BEGIN
  SELECT kind, actor_id INTO k, a FROM operations WHERE id = op_id;
  IF NOT FOUND OR a <> me THEN
    PERFORM credits_refuse('A change must belong to an operation of the signed-in staff member.');
  END IF;
  RETURN k;
END $$"""

# A request the login is approving in this transaction (decided by them, not yet closed).
FUNCTIONS["credits_approving(req_kind text, acct integer, me integer)"] = f"""
RETURNS integer {HEADER} STABLE AS $$
DECLARE c integer;
BEGIN
  SELECT max(credits) INTO c FROM approval_requests
   WHERE kind = req_kind AND account_id = acct AND decided_by = me AND status = 'pending';
  RETURN c;
END $$"""

FUNCTIONS["credits_append_only()"] = f"""
RETURNS trigger {HEADER} AS $$
BEGIN
  IF credits_is_owner() THEN RETURN COALESCE(NEW, OLD); END IF;
  PERFORM credits_refuse(format('Rows of %s are never changed or deleted; '
    'correct a mistake with a compensating entry.', TG_TABLE_NAME));
  RETURN NULL;
END $$"""

FUNCTIONS["credits_operations_rules()"] = f"""
RETURNS trigger {HEADER} AS $$
DECLARE me record;
BEGIN
  IF credits_is_owner() THEN RETURN NEW; END IF;
  me := credits_me();
  IF TG_OP = 'INSERT' THEN
    NEW.actor_id := me.staff_id;
    RETURN NEW;
  END IF;
  IF OLD.actor_id <> me.staff_id OR OLD.result <> '{{}}'
     OR (OLD.account_id IS NOT NULL AND NEW.account_id IS DISTINCT FROM OLD.account_id)
     OR (NEW.id, NEW.idempotency_key, NEW.fingerprint, NEW.kind, NEW.actor_id, NEW.reason,
         NEW.reference, NEW.note, NEW.created_at)
        IS DISTINCT FROM
        (OLD.id, OLD.idempotency_key, OLD.fingerprint, OLD.kind, OLD.actor_id, OLD.reason,
         OLD.reference, OLD.note, OLD.created_at) THEN
    PERFORM credits_refuse('An operation is written once, by the staff member who runs it.');
  END IF;
  RETURN NEW;
END $$"""

FUNCTIONS["credits_audit_actor()"] = f"""
RETURNS trigger {HEADER} AS $$
BEGIN
  IF credits_is_owner() THEN RETURN NEW; END IF;
  NEW.actor_id := (credits_me()).staff_id;
  RETURN NEW;
END $$"""

FUNCTIONS["credits_accounts_rules()"] = f"""
RETURNS trigger {HEADER} AS $$
BEGIN
  IF credits_is_owner() THEN RETURN NEW; END IF;
  PERFORM credits_me();
  IF NEW.period_start IS DISTINCT FROM OLD.period_start
     OR NEW.period_end IS DISTINCT FROM OLD.period_end THEN
    -- Periods only move forward, never into the future: a login cannot mint extra
    -- plan grants for made-up periods.
    IF NEW.period_start IS NULL OR NEW.period_end IS NULL
       OR NEW.period_end <= NEW.period_start
       OR (OLD.period_end IS NOT NULL AND NEW.period_start < OLD.period_end)
       OR NEW.period_start > now() + interval '1 day' THEN
      PERFORM credits_refuse('A billing period can only move forward to one that has begun.');
    END IF;
  END IF;
  RETURN NEW;
END $$"""

FUNCTIONS["credits_grants_rules()"] = f"""
RETURNS trigger {HEADER} AS $$
DECLARE me record; acct record;
BEGIN
  IF credits_is_owner() THEN RETURN NEW; END IF;
  me := credits_me();
  IF TG_OP = 'UPDATE' THEN
    IF (NEW.id, NEW.account_id, NEW.source, NEW.granted, NEW.created_at, NEW.expires_at,
        NEW.period_start, NEW.package_id, NEW.operation_id)
       IS DISTINCT FROM
       (OLD.id, OLD.account_id, OLD.source, OLD.granted, OLD.created_at, OLD.expires_at,
        OLD.period_start, OLD.package_id, OLD.operation_id) THEN
      PERFORM credits_refuse('Only the credits remaining on a grant change, with the ledger.');
    END IF;
    RETURN NEW;
  END IF;
  IF NEW.remaining <> 0 THEN
    PERFORM credits_refuse('A new grant starts empty; its ledger entry fills it.');
  END IF;
  IF NEW.source = 'purchase' AND me.staff_role <> 'system' THEN
    PERFORM credits_refuse('Packages are sold by the platform only.');
  END IF;
  IF NEW.source = 'plan' THEN
    SELECT a.period_start, a.period_end, p.monthly_allotment INTO acct
      FROM accounts a JOIN plans p ON p.id = a.plan_id WHERE a.id = NEW.account_id;
    IF NEW.granted <> acct.monthly_allotment
       OR NEW.period_start IS DISTINCT FROM acct.period_start
       OR NEW.expires_at IS DISTINCT FROM acct.period_end THEN
      PERFORM credits_refuse('Plan credits are granted only for the account''s current period.');
    END IF;
  END IF;
  RETURN NEW;
END $$"""

FUNCTIONS["credits_ledger_rules()"] = f"""
RETURNS trigger {HEADER} AS $$
DECLARE me record; g record; system_id integer; charge_account integer; op_kind text;
BEGIN
  IF credits_is_owner() THEN RETURN NEW; END IF;
  me := credits_me();
  SELECT id INTO system_id FROM staff WHERE username = 'system';
  SELECT account_id, source, granted, expires_at INTO g FROM credit_grants
   WHERE id = NEW.grant_id;
  IF g.account_id IS DISTINCT FROM NEW.account_id THEN
    PERFORM credits_refuse('A ledger entry must move credits of its own account.');
  END IF;
  -- Period roll-overs are the system's entries even when a staff action triggers them.
  IF NEW.kind IN ('plan_grant', 'plan_expiry') AND NEW.actor_id = system_id THEN
    NULL;
  ELSE
    NEW.actor_id := me.staff_id;
  END IF;
  IF NEW.operation_id IS NOT NULL THEN
    op_kind := credits_my_operation(NEW.operation_id, me.staff_id);
  ELSIF NEW.kind NOT IN ('charge', 'plan_grant', 'plan_expiry') THEN
    PERFORM credits_refuse('A ledger entry must belong to an operation.');
  END IF;
  IF NEW.kind = 'charge' THEN
    SELECT account_id INTO charge_account FROM usage_charges WHERE id = NEW.charge_id;
    IF me.staff_role <> 'system' OR NEW.delta > 0 OR charge_account IS DISTINCT FROM NEW.account_id THEN
      PERFORM credits_refuse('Usage is charged by the platform only, from the account''s credits.');
    END IF;
  ELSIF NEW.kind = 'purchase' THEN
    IF me.staff_role <> 'system' OR NEW.delta < 0 OR g.source <> 'purchase' THEN
      PERFORM credits_refuse('Packages are sold by the platform only.');
    END IF;
  ELSIF NEW.kind = 'plan_grant' THEN
    IF g.source <> 'plan' OR NEW.delta <> g.granted THEN
      PERFORM credits_refuse('A plan grant entry gives exactly the plan''s allotment.');
    END IF;
  ELSIF NEW.kind = 'plan_expiry' THEN
    IF g.source <> 'plan' OR NEW.delta > 0 OR g.expires_at > now() + interval '1 day' THEN
      PERFORM credits_refuse('Only plan credits whose period has ended expire.');
    END IF;
  ELSIF NEW.kind = 'refund' THEN
    SELECT account_id INTO charge_account FROM usage_charges WHERE id = NEW.charge_id;
    IF NEW.delta < 0 OR charge_account IS DISTINCT FROM NEW.account_id THEN
      PERFORM credits_refuse('A refund gives credits back for a charge of the same account.');
    END IF;
  ELSIF NEW.kind = 'adjustment' THEN
    IF me.staff_role NOT IN ('finance', 'admin') AND op_kind IS DISTINCT FROM 'approve' THEN
      PERFORM credits_refuse('Adjusting purchased credits needs the finance or admin role.');
    END IF;
  END IF;
  IF me.staff_role = 'system' AND NEW.kind NOT IN ('charge', 'purchase', 'plan_grant',
                                                   'plan_expiry') THEN
    PERFORM credits_refuse('The system account cannot do this; it is reserved for staff.');
  END IF;
  RETURN NEW;
END $$"""

FUNCTIONS["credits_refunds_rules()"] = f"""
RETURNS trigger {HEADER} AS $$
DECLARE me record; op_kind text; ch record; so_far integer; allowed integer;
BEGIN
  IF credits_is_owner() THEN RETURN NEW; END IF;
  me := credits_me();
  op_kind := credits_my_operation(NEW.operation_id, me.staff_id);
  SELECT account_id, credits, status INTO ch FROM usage_charges WHERE id = NEW.charge_id;
  IF ch.account_id IS DISTINCT FROM NEW.account_id OR NEW.credits > ch.credits THEN
    PERFORM credits_refuse('A refund returns at most what a charge of the account cost.');
  END IF;
  IF me.staff_role IN ('manager', 'admin') THEN RETURN NEW; END IF;
  IF me.staff_role = 'system' THEN
    PERFORM credits_refuse('The system account cannot refund.');
  END IF;
  SELECT COALESCE(sum(credits), 0) INTO so_far FROM refunds
   WHERE operation_id = NEW.operation_id;
  IF op_kind = 'incident_refund' AND me.staff_role = 'finance' THEN
    IF ch.status <> 'failed' THEN
      PERFORM credits_refuse('An incident refund covers failed charges only.');
    END IF;
    RETURN NEW;
  END IF;
  IF op_kind = 'approve' AND me.staff_role = 'finance' THEN
    allowed := credits_approving('refund', NEW.account_id, me.staff_id);
    IF allowed IS NULL OR so_far + NEW.credits > allowed THEN
      PERFORM credits_refuse('This refund is not the one of the request being approved.');
    END IF;
    RETURN NEW;
  END IF;
  IF ch.status <> 'failed' THEN
    PERFORM credits_refuse('Refunding a charge that did not fail needs approval.');
  END IF;
  IF so_far + NEW.credits > credits_limit('refund_limit', 500) THEN
    PERFORM credits_refuse(format('Refunds above %s credits need approval.',
                                  credits_limit('refund_limit', 500)));
  END IF;
  RETURN NEW;
END $$"""

FUNCTIONS["credits_adjustments_rules()"] = f"""
RETURNS trigger {HEADER} AS $$
DECLARE me record; op_kind text; allowed integer;
BEGIN
  IF credits_is_owner() THEN RETURN NEW; END IF;
  me := credits_me();
  op_kind := credits_my_operation(NEW.operation_id, me.staff_id);
  IF op_kind = 'approve' AND me.staff_role IN ('finance', 'manager', 'admin') THEN
    allowed := credits_approving('adjustment', NEW.account_id, me.staff_id);
    IF allowed IS NULL OR abs(NEW.delta) <> allowed THEN
      PERFORM credits_refuse('This adjustment is not the one of the request being approved.');
    END IF;
    RETURN NEW;
  END IF;
  IF me.staff_role NOT IN ('finance', 'admin') THEN
    PERFORM credits_refuse('Adjusting purchased credits needs the finance or admin role.');
  END IF;
  IF abs(NEW.delta) > credits_limit('adjust_limit', 1000) THEN
    PERFORM credits_refuse(format('Adjustments above %s credits need approval.',
                                  credits_limit('adjust_limit', 1000)));
  END IF;
  RETURN NEW;
END $$"""

FUNCTIONS["credits_reversals_rules()"] = f"""
RETURNS trigger {HEADER} AS $$
DECLARE me record; op_kind text; original integer; acct integer; allowed integer;
  size integer; is_refund boolean;
BEGIN
  IF credits_is_owner() THEN RETURN NEW; END IF;
  me := credits_me();
  op_kind := credits_my_operation(NEW.operation_id, me.staff_id);
  is_refund := NEW.refund_id IS NOT NULL;
  IF is_refund THEN
    SELECT account_id, -credits INTO acct, original FROM refunds WHERE id = NEW.refund_id;
  ELSE
    SELECT account_id, -delta INTO acct, original FROM adjustments WHERE id = NEW.adjustment_id;
  END IF;
  IF acct IS DISTINCT FROM NEW.account_id OR NEW.credits IS DISTINCT FROM original THEN
    PERFORM credits_refuse('A reversal undoes exactly the entry it reverses.');
  END IF;
  size := abs(NEW.credits);
  IF me.staff_role = 'system' THEN
    PERFORM credits_refuse('The system account cannot reverse.');
  END IF;
  IF op_kind = 'approve' AND me.staff_role IN ('finance', 'manager', 'admin') THEN
    allowed := credits_approving('reversal', NEW.account_id, me.staff_id);
    IF allowed IS NULL OR size > allowed THEN
      PERFORM credits_refuse('This reversal is not the one of the request being approved.');
    END IF;
    RETURN NEW;
  END IF;
  IF is_refund THEN
    IF me.staff_role NOT IN ('manager', 'admin')
       AND size > credits_limit('refund_limit', 500) THEN
      PERFORM credits_refuse('Reversing a refund above the refund limit needs approval.');
    END IF;
  ELSIF me.staff_role NOT IN ('finance', 'admin')
        OR size > credits_limit('adjust_limit', 1000) THEN
    PERFORM credits_refuse('Reversing this adjustment needs the finance or admin role '
                           'within the adjustment limit.');
  END IF;
  RETURN NEW;
END $$"""

FUNCTIONS["credits_requests_rules()"] = f"""
RETURNS trigger {HEADER} AS $$
DECLARE me record;
BEGIN
  IF credits_is_owner() THEN RETURN NEW; END IF;
  me := credits_me();
  IF TG_OP = 'INSERT' THEN
    PERFORM credits_my_operation(NEW.operation_id, me.staff_id);
    NEW.requested_by := me.staff_id;
    IF NEW.status <> 'pending' OR NEW.decided_by IS NOT NULL THEN
      PERFORM credits_refuse('A new request is pending until a colleague decides it.');
    END IF;
    RETURN NEW;
  END IF;
  IF (NEW.id, NEW.kind, NEW.account_id, NEW.credits, NEW.payload, NEW.summary,
      NEW.operation_id, NEW.requested_by, NEW.requested_at)
     IS DISTINCT FROM
     (OLD.id, OLD.kind, OLD.account_id, OLD.credits, OLD.payload, OLD.summary,
      OLD.operation_id, OLD.requested_by, OLD.requested_at) THEN
    PERFORM credits_refuse('A request is never edited; make a new one.');
  END IF;
  IF OLD.status <> 'pending' THEN
    PERFORM credits_refuse(format('This request was already %s.', OLD.status));
  END IF;
  IF OLD.decided_by IS NOT NULL AND OLD.decided_by <> me.staff_id THEN
    PERFORM credits_refuse('Another staff member is deciding this request.');
  END IF;
  IF me.staff_role NOT IN ('finance', 'manager', 'admin') THEN
    PERFORM credits_refuse('Approving requests needs the finance, manager or admin role.');
  END IF;
  IF OLD.requested_by = me.staff_id THEN
    PERFORM credits_refuse('You cannot approve your own request.');
  END IF;
  NEW.decided_by := me.staff_id;
  RETURN NEW;
END $$"""

# -- checked at commit (deferred constraint triggers) ---------------------------------------

FUNCTIONS["credits_check_grant(gid bigint)"] = f"""
RETURNS void {HEADER} AS $$
DECLARE r integer; s bigint;
BEGIN
  SELECT remaining INTO r FROM credit_grants WHERE id = gid;
  SELECT COALESCE(sum(delta), 0) INTO s FROM ledger_entries WHERE grant_id = gid;
  IF r IS DISTINCT FROM s THEN
    RAISE EXCEPTION 'Grant % holds % credits but its ledger adds up to %; '
      'credits only move with a ledger entry.', gid, r, s USING ERRCODE = '23514';
  END IF;
END $$"""

FUNCTIONS["credits_check_grant_row()"] = f"""
RETURNS trigger {HEADER} AS $$
BEGIN
  IF NOT credits_is_owner() THEN PERFORM credits_check_grant(NEW.id); END IF;
  RETURN NULL;
END $$"""

FUNCTIONS["credits_check_account_row()"] = f"""
RETURNS trigger {HEADER} AS $$
DECLARE a record; p bigint; b bigint; f bigint;
BEGIN
  IF credits_is_owner() THEN RETURN NULL; END IF;
  SELECT plan_balance, purchased_balance, refund_balance INTO a FROM accounts
   WHERE id = NEW.id;
  SELECT COALESCE(sum(remaining) FILTER (WHERE source = 'plan'), 0),
         COALESCE(sum(remaining) FILTER (WHERE source IN ('purchase', 'adjustment')), 0),
         COALESCE(sum(remaining) FILTER (WHERE source = 'refund'), 0)
    INTO p, b, f FROM credit_grants WHERE account_id = NEW.id;
  IF (a.plan_balance, a.purchased_balance, a.refund_balance) IS DISTINCT FROM (p, b, f) THEN
    RAISE EXCEPTION 'The balances of account % do not equal its grants; '
      'credits only move with a ledger entry.', NEW.id USING ERRCODE = '23514';
  END IF;
  RETURN NULL;
END $$"""

FUNCTIONS["credits_check_ledger_row()"] = f"""
RETURNS trigger {HEADER} AS $$
DECLARE expected bigint; actual bigint;
BEGIN
  IF credits_is_owner() THEN RETURN NULL; END IF;
  PERFORM credits_check_grant(NEW.grant_id);
  IF NEW.kind = 'refund' THEN
    SELECT credits INTO expected FROM refunds WHERE charge_id = NEW.charge_id;
    SELECT sum(delta) INTO actual FROM ledger_entries
     WHERE charge_id = NEW.charge_id AND kind = 'refund';
  ELSIF NEW.kind = 'charge' THEN
    SELECT -credits INTO expected FROM usage_charges WHERE id = NEW.charge_id;
    SELECT sum(delta) INTO actual FROM ledger_entries
     WHERE charge_id = NEW.charge_id AND kind = 'charge';
  ELSIF NEW.kind = 'adjustment' THEN
    SELECT sum(delta) INTO expected FROM adjustments WHERE operation_id = NEW.operation_id;
    SELECT sum(delta) INTO actual FROM ledger_entries
     WHERE operation_id = NEW.operation_id AND kind = 'adjustment';
  ELSIF NEW.kind = 'reversal' THEN
    SELECT sum(credits) INTO expected FROM reversals WHERE operation_id = NEW.operation_id;
    SELECT sum(delta) INTO actual FROM ledger_entries
     WHERE operation_id = NEW.operation_id AND kind = 'reversal';
  ELSE
    RETURN NULL;
  END IF;
  IF expected IS DISTINCT FROM actual THEN
    RAISE EXCEPTION 'Ledger entries of kind % add up to % where the % row says %.',
      NEW.kind, actual, NEW.kind, expected USING ERRCODE = '23514';
  END IF;
  RETURN NULL;
END $$"""

FUNCTIONS["credits_check_request_row()"] = f"""
RETURNS trigger {HEADER} AS $$
DECLARE s text; d integer;
BEGIN
  IF credits_is_owner() THEN RETURN NULL; END IF;
  SELECT status, decided_by INTO s, d FROM approval_requests WHERE id = NEW.id;
  IF d IS NOT NULL AND s = 'pending' THEN
    RAISE EXCEPTION 'Request % was taken without being decided.', NEW.id
      USING ERRCODE = '23514';
  END IF;
  RETURN NULL;
END $$"""

# (trigger name, table, timing and events, function)
TRIGGERS = [
    *((f"credits_append_only_{t}", t, "BEFORE UPDATE OR DELETE", "credits_append_only")
      for t in APPEND_ONLY),
    ("credits_operations_rules", "operations", "BEFORE INSERT OR UPDATE",
     "credits_operations_rules"),
    ("credits_operations_no_delete", "operations", "BEFORE DELETE", "credits_append_only"),
    ("credits_audit_actor", "audit_events", "BEFORE INSERT", "credits_audit_actor"),
    ("credits_accounts_rules", "accounts", "BEFORE UPDATE", "credits_accounts_rules"),
    ("credits_grants_rules", "credit_grants", "BEFORE INSERT OR UPDATE",
     "credits_grants_rules"),
    ("credits_ledger_rules", "ledger_entries", "BEFORE INSERT", "credits_ledger_rules"),
    ("credits_refunds_rules", "refunds", "BEFORE INSERT", "credits_refunds_rules"),
    ("credits_adjustments_rules", "adjustments", "BEFORE INSERT", "credits_adjustments_rules"),
    ("credits_reversals_rules", "reversals", "BEFORE INSERT", "credits_reversals_rules"),
    ("credits_requests_rules", "approval_requests", "BEFORE INSERT OR UPDATE",
     "credits_requests_rules"),
]

# Checked at commit, when every row of the transaction is in place.
CONSTRAINT_TRIGGERS = [
    ("credits_check_grant", "credit_grants", "INSERT OR UPDATE", "credits_check_grant_row"),
    ("credits_check_account", "accounts", "UPDATE", "credits_check_account_row"),
    ("credits_check_ledger", "ledger_entries", "INSERT", "credits_check_ledger_row"),
    ("credits_check_request", "approval_requests", "UPDATE", "credits_check_request_row"),
]

# TRUNCATE bypasses row triggers: refuse it per statement.
TRUNCATE_GUARDED = (*APPEND_ONLY, "operations", "credit_grants", "accounts")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for signature, body in FUNCTIONS.items():
        op.execute(f"CREATE OR REPLACE FUNCTION public.{signature} {body}")
        op.execute(f"REVOKE ALL ON FUNCTION public.{_args(signature)} FROM PUBLIC")
    for name, tbl, when, func in TRIGGERS:
        op.execute(f"CREATE TRIGGER {name} {when} ON public.{tbl} "
                   f"FOR EACH ROW EXECUTE FUNCTION public.{func}()")
    for name, tbl, events, func in CONSTRAINT_TRIGGERS:
        op.execute(f"CREATE CONSTRAINT TRIGGER {name} AFTER {events} ON public.{tbl} "
                   f"DEFERRABLE INITIALLY DEFERRED "
                   f"FOR EACH ROW EXECUTE FUNCTION public.{func}()")
    for tbl in TRUNCATE_GUARDED:
        op.execute(f"CREATE TRIGGER credits_no_truncate_{tbl} BEFORE TRUNCATE ON public.{tbl} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION public.credits_append_only()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for tbl in TRUNCATE_GUARDED:
        op.execute(f"DROP TRIGGER IF EXISTS credits_no_truncate_{tbl} ON public.{tbl}")
    for name, tbl, _, _ in [*TRIGGERS, *CONSTRAINT_TRIGGERS]:
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON public.{tbl}")
    for signature in reversed(list(FUNCTIONS)):
        op.execute(f"DROP FUNCTION IF EXISTS public.{_args(signature)}")


def _args(signature: str) -> str:
    """``name(a type, OUT b type)`` → ``name(type)``: the form DROP and REVOKE take."""
    name, _, rest = signature.partition("(")
    kept = []
    for part in filter(None, (p.strip() for p in rest.rstrip(")").split(","))):
        words = part.split()
        if words[0].upper() == "OUT":
            continue
        kept.append(" ".join(words[1:]) if len(words) > 1 else words[0])
    return f"{name}({', '.join(kept)})"
