"""checks.py - the chaos harness's invariants, checked against the database, the client history and the receiver.

snapshot() reads the run's database once the relay has drained; check_all()
returns one Check per invariant, each with the violations it found (at most
a few are printed; all are counted).
"""

import collections

from procs import psql

CHARGE_EVENT = {"succeeded": "charge.succeeded", "failed": "charge.failed"}
JUSTIFIED_REFUSALS = ("amount_too_large", "charge_already_refunded")
# A capture may be refused only because another capture of the charge came first.
JUSTIFIED_CAPTURE_REFUSALS = ("charge_already_captured",)


class Check:
    def __init__(self, name):
        self.name = name
        self.violations = []
        self.note = ""

    def fail(self, message):
        self.violations.append(message)

    @property
    def ok(self):
        return not self.violations


class Snapshot:
    """The rows the checks need, read once."""

    def __init__(self, url):
        self.charges = {}    # id -> dict
        self.refunds = {}    # id -> dict
        self.events = []     # dicts, by seq
        for r in psql(url, "SELECT id, user_id, amount, status, amount_refunded,"
                           " coalesce(idempotency_key, ''), coalesce(request_id, ''),"
                           " created, status = 'succeeded' AND captured,"
                           " CASE WHEN status = 'succeeded' AND captured"
                           "      THEN coalesce(amount_captured, amount) ELSE 0 END,"
                           " coalesce(release_reason, '') FROM charges"):
            self.charges[r[0]] = {"id": r[0], "user": r[1], "amount": int(r[2]), "status": r[3],
                                  "amount_refunded": int(r[4]), "key": r[5], "request": r[6],
                                  "created": r[7], "captured": r[8] == "t",
                                  "amount_captured": int(r[9]), "release_reason": r[10]}
        for r in psql(url, "SELECT id, user_id, charge_id, amount, coalesce(idempotency_key, ''),"
                           " coalesce(request_id, ''), created FROM refunds"):
            self.refunds[r[0]] = {"id": r[0], "user": r[1], "charge": r[2], "amount": int(r[3]),
                                  "key": r[4], "request": r[5], "created": r[6]}
        for r in psql(url, "SELECT seq, id, user_id, type, object_id, charge_id,"
                           " coalesce(idempotency_key, ''), published_at IS NOT NULL,"
                           " coalesce(data->>'amount', ''), coalesce(data->>'amount_refunded', ''),"
                           " coalesce(data->>'captured', ''), coalesce(request_id, '')"
                           " FROM outbox_events ORDER BY seq"):
            self.events.append({"seq": int(r[0]), "id": r[1], "user": r[2], "type": r[3],
                                "object": r[4], "charge": r[5], "key": r[6],
                                "published": r[7] == "t",
                                "amount": int(r[8]) if r[8] else None,
                                "amount_refunded": int(r[9]) if r[9] else None,
                                "captured": r[10] != "false", "request": r[11]})
        self.idem = {}       # (user, key) -> (object_id, status_code)
        for r in psql(url, "SELECT user_id, key, coalesce(object_id, ''), status_code"
                           " FROM idempotency_keys"):
            self.idem[(r[0], r[1])] = (r[2], int(r[3]))
        self.deliveries = collections.Counter()
        for r in psql(url, "SELECT status, count(*) FROM webhook_deliveries GROUP BY status"):
            self.deliveries[r[0]] = int(r[1])


def backlog(url):
    """(unpublished events, pending deliveries, dead deliveries) right now."""
    r = psql(url, "SELECT (SELECT count(*) FROM outbox_events WHERE published_at IS NULL),"
                  " (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'),"
                  " (SELECT count(*) FROM webhook_deliveries WHERE status = 'dead')")[0]
    return int(r[0]), int(r[1]), int(r[2])


def rows_by_key(snap):
    """
    (user, key) -> [("charge"|"refund"|"capture", row)] for every stored charge
    and refund, and every capture (its charge.captured event: the charge id and
    the request that captured it).
    """
    out = collections.defaultdict(list)
    for c in snap.charges.values():
        out[(c["user"], c["key"])].append(("charge", c))
    for r in snap.refunds.values():
        out[(r["user"], r["key"])].append(("refund", r))
    for e in snap.events:
        if e["type"] == "charge.captured":
            out[(e["user"], e["key"])].append(("capture", {
                "id": e["charge"], "user": e["user"], "key": e["key"],
                "request": e.get("request"), "created": None}))
    return out


def check_acknowledged(ops, by_key):
    """Every acknowledged charge and refund exists exactly once, as acknowledged."""
    c = Check("every acknowledged charge and refund exists exactly once")
    n = 0
    for op in ops:
        # A capture stores no object of its own: check_captures checks it.
        if op.outcome not in ("ok", "declined") or op.kind == "capture":
            continue
        n += 1
        rows = by_key.get((op.user, op.key), [])
        if len(rows) != 1:
            c.fail("%s %s (key %s, answered %s %s) has %d rows: %s" % (
                op.kind, op.object_id, op.key, op.status, op.object_id, len(rows),
                [r["id"] for _, r in rows]))
            continue
        kind, row = rows[0]
        problems = []
        if kind != op.kind:
            problems.append("stored as a %s" % kind)
        if row["id"] != op.object_id:
            problems.append("stored id %s" % row["id"])
        if row["amount"] != op.amount:
            problems.append("stored amount %d, asked %d" % (row["amount"], op.amount))
        if kind == "charge" and row["status"] != ("succeeded" if op.outcome == "ok" else "failed"):
            problems.append("stored status %s" % row["status"])
        if kind == "refund" and row["charge"] != op.charge:
            problems.append("refunds %s, asked %s" % (row["charge"], op.charge))
        if problems:
            c.fail("%s %s (key %s): %s" % (op.kind, op.object_id, op.key, "; ".join(problems)))
    c.note = "%d acknowledged" % n
    return c


def check_keys(ops, snap, by_key):
    """
    Every Idempotency-Key maps to at most one charge or refund, every row has
    a key a client sent, and the key's stored response names that object.
    """
    c = Check("every Idempotency-Key maps to at most one charge or refund")
    sent = {(op.user, op.key) for op in ops}
    for (user, key), rows in sorted(by_key.items()):
        stored = snap.idem.get((user, key))
        kind, row = rows[0]
        want = (row["id"], 200 if kind == "capture" else
                402 if row.get("status") == "failed" else 201)
        if stored != want:
            c.fail("%s under key %s of %s: the idempotency row holds %s, not %s" % (
                rows[0][1]["id"], key, user, stored, want))
        if len(rows) > 1:
            c.fail("key %s of %s has %d objects: %s" % (
                key, user, len(rows), ", ".join("%s %s" % (k, r["id"]) for k, r in rows)))
        if (user, key) not in sent:
            c.fail("%s stored under key %r of %s, which no client sent" % (
                ", ".join(r["id"] for _, r in rows), key, user))
    c.note = "%d keys sent, %d stored" % (len(sent), len(by_key))
    return c


def check_unknowns(ops, by_key, unresolved):
    """Each unknown operation ended as exactly 0 or 1 objects, and as its final answer says."""
    c = Check("each unknown operation ended as exactly 0 or 1")
    committed = absent = 0
    for op in ops:
        if not op.was_unknown or op.kind == "capture":   # check_captures
            continue
        rows = by_key.get((op.user, op.key), [])
        if op in unresolved or op.outcome == "unknown":
            c.fail("%s key %s never got a definite answer (answers %s); %d rows" % (
                op.kind, op.key, op.answers[-6:], len(rows)))
            continue
        if len(rows) > 1:
            c.fail("%s key %s has %d objects" % (op.kind, op.key, len(rows)))
        elif op.outcome in ("ok", "declined"):
            committed += 1
            if len(rows) != 1:
                c.fail("%s key %s resolved as %s %s but has no row" % (
                    op.kind, op.key, op.status, op.object_id))
        else:
            absent += 1
            if rows:
                c.fail("%s key %s resolved as %s %s but %s exists" % (
                    op.kind, op.key, op.status, op.code, rows[0][1]["id"]))
    c.note = "%d unknown: %d exist, %d do not" % (committed + absent + len(unresolved),
                                                  committed, absent)
    return c


def check_definite(ops, snap, by_key):
    """Every definite answer is one the request allows, and a refusal stored nothing and was justified."""
    c = Check("every definite answer is allowed, refusals stored nothing")
    for op in ops:
        if op.outcome in ("pending", "unknown"):
            continue
        what = "%s key %s answered %s %s" % (op.kind, op.key, op.status, op.code or "")
        if op.kind == "charge":
            want = "ok" if op.source == "tok_visa" else "declined"
            if op.outcome != want:
                c.fail("%s: a %s charge must be %s" % (what, op.source, want))
            elif op.outcome == "ok" and (op.resp.get("status") != "succeeded"
                                         or op.resp.get("amount") != op.amount):
                c.fail("%s: body %r" % (what, op.resp))
            elif op.outcome == "declined" and op.code != "card_declined":
                c.fail("%s: a decline must be card_declined" % what)
            elif op.outcome == "ok" and op.resp.get("captured") is not (op.capture is not False):
                c.fail("%s: asked capture %s, body %r" % (what, op.capture, op.resp))
            continue
        if op.kind == "capture":
            ch = snap.charges.get(op.charge)
            if op.outcome == "ok":
                want = op.amount if op.amount is not None else (ch or {}).get("amount")
                if (op.resp.get("id") != op.charge or op.resp.get("captured") is not True
                        or op.resp.get("amount_captured") != want):
                    c.fail("%s: body %r" % (what, op.resp))
            elif op.status != 400 or op.code not in JUSTIFIED_CAPTURE_REFUSALS:
                c.fail("%s: a capture of our own authorization %s may only be 200 or 400 %s" % (
                    what, op.charge, "/".join(JUSTIFIED_CAPTURE_REFUSALS)))
            elif ch is None or not ch["captured"] or snap.idem.get((op.user, op.key)):
                c.fail("%s, but the charge is %s and the key stored %s" % (
                    what, "captured" if ch and ch["captured"] else "not captured",
                    snap.idem.get((op.user, op.key))))
            continue
        if op.outcome == "ok":
            if op.resp.get("charge") != op.charge or op.resp.get("amount") != op.amount:
                c.fail("%s: body %r" % (what, op.resp))
            continue
        if op.status != 400 or op.code not in JUSTIFIED_REFUSALS:
            c.fail("%s: a refund of %d of our own charge %s may only be 201 or 400 %s" % (
                what, op.amount, op.charge, "/".join(JUSTIFIED_REFUSALS)))
            continue
        if by_key.get((op.user, op.key)):
            c.fail("%s but stored %s" % (what, by_key[(op.user, op.key)][0][1]["id"]))
        ch = snap.charges.get(op.charge)
        # amount_refunded only grows, and clients refund only captured charges, whose
        # amount_captured never changes: a justified refusal is still justified at the end.
        cap = ch.get("amount_captured", ch["amount"]) if ch else 0
        if ch is None:
            c.fail("%s: the charge does not exist" % what)
        elif op.code == "amount_too_large" and ch["amount_refunded"] + op.amount <= cap:
            c.fail("%s, but even now %d + %d <= %d" % (what, ch["amount_refunded"], op.amount, cap))
        elif op.code == "charge_already_refunded" and ch["amount_refunded"] < cap:
            c.fail("%s, but even now only %d of %d is refunded" % (
                what, ch["amount_refunded"], cap))
    return c


def check_replays(ops, by_key):
    """
    A stored response is replayed only after an attempt that may have stored
    it: one that timed out, lost its connection, or was answered 500, 503 or
    409 idempotency_key_in_use. A 503 normally stored nothing, but when the
    database connection broke between the commit and the answer (README,
    Idempotency) the very request that stored the row was answered 503: that
    lost acknowledgement is allowed, and counted. A replay with no earlier
    attempt, or whose row no answered attempt of this client stored, is not.
    """
    c = Check("a replay follows an attempt that may have stored it")
    n = lost = 0
    for op in ops:
        if not op.replayed or op.outcome not in ("ok", "declined", "failed"):
            continue
        n += 1
        before = op.answers[:-1]
        if all(a == 503 for a in before):
            rows = by_key.get((op.user, op.key)) or [(None, {})]
            row = rows[0][1]
            by = row.get("request")
            answered = [a for a, rid in zip(op.answers, op.request_ids) if rid and rid == by]
            if before and answered and answered[0] == 503:
                lost += 1   # the commit happened; its answer was lost with the connection
                continue
            c.fail("%s key %s: replayed %s %s after only %s; the row (created %s) was stored by"
                   " request %s, %s" % (
                       op.kind, op.key, op.status, op.object_id,
                       "503s %s" % before if before else "no earlier attempt",
                       row.get("created"), by,
                       "which was answered %s" % answered[0] if answered
                       else "not one this client saw"))
    c.note = "%d replays, %d after a lost commit acknowledgement" % (n, lost)
    return c


def check_money(snap):
    """
    For every charge, amount_refunded = the sum of its refunds, captured <=
    authorized, and refunded <= captured (an uncaptured charge: nothing, or
    all of it when a refund released it).
    """
    c = Check("for every charge, amount_refunded = sum of its refunds <= captured <= authorized")
    sums = collections.Counter()
    for r in snap.refunds.values():
        sums[r["charge"]] += r["amount"]
    for ch in snap.charges.values():
        s = sums.get(ch["id"], 0)
        captured = ch.get("captured", ch["status"] == "succeeded")
        cap = ch.get("amount_captured", ch["amount"] if captured else 0)
        if ch["amount_refunded"] != s or s > ch["amount"]:
            c.fail("charge %s: amount %d, amount_refunded %d, sum of refunds %d" % (
                ch["id"], ch["amount"], ch["amount_refunded"], s))
        if cap > ch["amount"] or (captured and cap < 1):
            c.fail("charge %s: captured %d of an authorized %d" % (ch["id"], cap, ch["amount"]))
        if captured and s > cap:
            c.fail("charge %s: refunded %d of a captured %d" % (ch["id"], s, cap))
        if not captured and s and (s != ch["amount"] or ch.get("release_reason") != "refunded"):
            c.fail("uncaptured charge %s has refunds of %d (release %r)" % (
                ch["id"], s, ch.get("release_reason")))
        if ch["status"] != "succeeded" and s:
            c.fail("failed charge %s has refunds of %d" % (ch["id"], s))
    for r in snap.refunds.values():
        if r["charge"] not in snap.charges:
            c.fail("refund %s of a missing charge %s" % (r["id"], r["charge"]))
    c.note = "%d charges, %d refunds" % (len(snap.charges), len(snap.refunds))
    return c


def check_outbox(snap):
    """Every committed charge and refund has exactly its outbox events, and no event is orphaned."""
    c = Check("every committed charge and refund has its outbox events")
    by_object = collections.defaultdict(list)
    refunded = collections.defaultdict(list)          # (charge, key) -> charge.refunded events
    for e in snap.events:
        if e["type"] == "charge.refunded":
            refunded[(e["charge"], e["key"])].append(e)
        else:
            by_object[e["object"]].append(e)
    for ch in snap.charges.values():
        evs = by_object.get(ch["id"], [])
        got = [e["type"] for e in evs]
        want = [CHARGE_EVENT[ch["status"]]]
        # An authorization captured later has its charge.captured after charge.succeeded.
        if evs and evs[0]["type"] == "charge.succeeded" and not evs[0].get("captured", True) \
                and ch.get("captured"):
            want.append("charge.captured")
        if got != want:
            c.fail("%s charge %s has events %s" % (ch["status"], ch["id"], got))
    for r in snap.refunds.values():
        got = [e["type"] for e in by_object.get(r["id"], [])]
        if got != ["refund.created"]:
            c.fail("refund %s has events %s" % (r["id"], got))
        n = len(refunded.get((r["charge"], r["key"]), []))
        if n != 1:
            c.fail("refund %s (key %s) has %d charge.refunded events" % (r["id"], r["key"], n))
    # The events carry the objects as each transaction left them: a refund
    # its amount, and charge.refunded the charge with every refund so far.
    refund_of = {(r["charge"], r["key"]): r for r in snap.refunds.values()}
    running = collections.Counter()
    for e in snap.events:
        if e["type"] == "refund.created":
            r = snap.refunds.get(e["object"])
            if r is not None and e["amount"] != r["amount"]:
                c.fail("refund.created %s says amount %s; refund %s is %d" % (
                    e["id"], e["amount"], r["id"], r["amount"]))
        elif e["type"] == "charge.refunded":
            r = refund_of.get((e["charge"], e["key"]))
            if r is None:
                continue
            running[e["charge"]] += r["amount"]
            if e["amount_refunded"] != running[e["charge"]]:
                c.fail("charge.refunded %s (seq %d, refund %s) says amount_refunded %s; the"
                       " refunds so far in commit order sum to %d" % (
                           e["id"], e["seq"], r["id"], e["amount_refunded"],
                           running[e["charge"]]))
    keys = set(refund_of)
    for (charge, key), evs in refunded.items():
        if (charge, key) not in keys:
            c.fail("charge.refunded %s of %s (key %s) has no refund" % (evs[0]["id"], charge, key))
    for obj, evs in by_object.items():
        if obj not in snap.charges and obj not in snap.refunds:
            c.fail("events %s name a missing object %s" % ([e["id"] for e in evs], obj))
    c.note = "%d events" % len(snap.events)
    return c


def check_captures(ops, snap):
    """
    Each authorization was captured at most once, as its one 200 key says, and
    every acknowledged capture (also one resolved after the run) is the charge's
    capture: its key stored that 200, and the charge holds the answered amount.
    """
    c = Check("each authorization is captured at most once, as acknowledged")
    keys_of = collections.defaultdict(list)   # charge -> capture keys stored (200)
    for (user, key), (obj, status) in snap.idem.items():
        if status == 200:
            keys_of[obj].append(key)
    n = 0
    for ch in snap.charges.values():
        keys = keys_of.get(ch["id"], [])
        if len(keys) > 1:
            c.fail("charge %s was captured under %d keys: %s" % (ch["id"], len(keys), keys))
        if keys and not ch.get("captured"):
            c.fail("charge %s has a capture key %s but is not captured" % (ch["id"], keys[0]))
    for op in ops:
        if op.kind != "capture":
            continue
        if op.outcome == "unknown" or op.outcome == "pending":
            if op.was_unknown:
                c.fail("capture key %s never got a definite answer (answers %s)" % (
                    op.key, op.answers[-6:]))
            continue
        if op.outcome != "ok":
            continue
        n += 1
        ch = snap.charges.get(op.charge) or {}
        if snap.idem.get((op.user, op.key)) != (op.charge, 200):
            c.fail("capture %s of %s acknowledged, but its key holds %s" % (
                op.key, op.charge, snap.idem.get((op.user, op.key))))
        elif not ch.get("captured") or ch.get("amount_captured") != op.resp.get("amount_captured"):
            c.fail("capture %s of %s answered amount_captured %s; the charge: captured %s, %s" % (
                op.key, op.charge, op.resp.get("amount_captured"), ch.get("captured"),
                ch.get("amount_captured")))
    c.note = "%d acknowledged captures" % n
    return c


def check_drained(drained, backlog_now, bound):
    c = Check("the relay drained (nothing unpublished, pending or dead)")
    unpublished, pending, dead = backlog_now
    if unpublished or pending or dead:
        c.fail("after %.0fs: %d unpublished events, %d pending and %d dead deliveries" % (
            bound, unpublished, pending, dead))
    c.note = "in %.1fs" % drained if drained is not None else "not within %.0fs" % bound
    return c


def check_received(snap, arrivals):
    """Every event reached the receiver, at its user's endpoint, with a valid signature."""
    c = Check("every event reached the receiver with a valid signature")
    invalid = [a for a in arrivals if a.error is not None]
    for a in invalid[:20]:
        c.fail("request #%d to %s (webhook-id %s) is not authentic: %s" % (
            a.index, a.name, a.webhook_id, a.error))
    if len(invalid) > 20:
        c.fail("... and %d more unauthentic requests" % (len(invalid) - 20))
    delivered = {a.webhook_id for a in arrivals if a.delivered}
    for e in snap.events:
        if e["id"] not in delivered:
            c.fail("%s %s (seq %d, charge %s) was never delivered" % (
                e["type"], e["id"], e["seq"], e["charge"]))
    c.note = "%d requests, %d unauthentic" % (len(arrivals), len(invalid))
    return c


def check_exactly_once(snap, arrivals):
    """De-duplicated by webhook-id, the receiver has each event exactly once, as the outbox has it."""
    c = Check("de-duplicated by webhook-id, the receiver has each event exactly once")
    events = {e["id"]: e for e in snap.events}
    first = {}
    for a in arrivals:
        if a.delivered and a.webhook_id not in first:
            first[a.webhook_id] = a
    for wid, a in first.items():
        e = events.get(wid)
        if e is None:
            c.fail("delivered %s (#%d, %s) is not an event of the outbox" % (
                wid, a.index, (a.event or {}).get("type")))
            continue
        obj = ((a.event or {}).get("data") or {}).get("object") or {}
        if a.name != e["user"] or a.event.get("type") != e["type"] or obj.get("id") != e["object"]:
            c.fail("delivered %s to %s as %s of %s; the outbox has %s of %s for %s" % (
                wid, a.name, a.event.get("type"), obj.get("id"), e["type"], e["object"],
                e["user"]))
    c.note = "%d distinct of %d events" % (len(first), len(events))
    return c


def check_order(snap, arrivals):
    """The events of each charge first arrived in outbox order (seq)."""
    c = Check("the events of each charge arrived in order")
    first = {}
    for a in arrivals:
        if a.error is None and a.webhook_id not in first:
            first[a.webhook_id] = a.index
    per_charge = collections.defaultdict(list)
    for e in snap.events:
        per_charge[e["charge"]].append(e)
    for charge, evs in per_charge.items():
        prev = None
        for e in evs:                         # already by seq
            idx = first.get(e["id"])
            if idx is None:
                continue                      # never arrived: check_received reports it
            if prev is not None and idx < prev[1]:
                c.fail("charge %s: %s %s (seq %d) first arrived as #%d, before %s %s (seq %d)"
                       " at #%d" % (charge, e["type"], e["id"], e["seq"], idx, prev[0]["type"],
                                    prev[0]["id"], prev[0]["seq"], prev[1]))
            prev = (e, idx)
    c.note = "%d charges" % len(per_charge)
    return c


def check_processes(services):
    c = Check("no process died on its own")
    for s in services:
        for when, code, tail in s.unexpected:
            c.fail("%s exited with %s; its log ends:\n%s" % (s.name, code, tail))
    return c
