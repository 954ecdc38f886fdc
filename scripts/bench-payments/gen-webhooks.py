#!/usr/bin/env python3
"""Writes signed Stripe webhook deliveries for scripts/bench payments (standard library only).

    gen-webhooks.py --secret whsec_... --count N --threads T --tag TAG --out PREFIX [--bytes 1024]
    gen-webhooks.py --pgbench-template [--bytes 1024]

Each delivery is a distinct `payment_intent.succeeded` event (its own evt_, pi_ and booking id),
about --bytes long (padded with a description, so every body has the same length), signed the way
Stripe signs: header `Stripe-Signature: t=<now>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, keyed with
the secret string as given (whsec_ included). The timestamp is now: generate right before the run
(the service accepts 300 s either way).

The deliveries are split over T files, PREFIX.0 .. PREFIX.<T-1> (one per wrk thread, round robin),
one delivery a line: `<Stripe-Signature value>` TAB `<body>` (a body is one line of JSON, no tab).

--pgbench-template prints one body with @EVT@, @PI@ and @BID@ where the ids go (for the pgbench
reference, which fills them in with replace()), padded to the same length as the deliveries.
"""

import argparse
import hashlib
import hmac
import json
import sys
import time
import uuid

# The ids have fixed widths (so every body has the same length): evt_/pi_ + 24 characters.
ID_WIDTH = 24


def body_parts(created, padding):
    """The body as a format string with {evt}, {pi}, {bid} slots."""
    event = {
        "id": "{evt}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": created,
        "type": "payment_intent.succeeded",
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": "{bid}-payment"},
        "data": {
            "object": {
                "id": "{pi}",
                "object": "payment_intent",
                "amount": 5000,
                "amount_capturable": 0,
                "amount_received": 5000,
                "capture_method": "automatic",
                "confirmation_method": "automatic",
                "created": created,
                "currency": "usd",
                "customer": "cus_bench0000000000",
                "description": padding,
                "latest_charge": "ch_bench0000000000000000",
                "livemode": False,
                "metadata": {"booking_id": "{bid}"},
                "payment_method": "pm_bench0000000000000000",
                "payment_method_types": ["card"],
                "receipt_email": "bench@example.com",
                "status": "succeeded",
            }
        },
    }
    text = json.dumps(event, separators=(",", ":"))
    # Literal braces of the JSON must survive str.format.
    text = text.replace("{", "{{").replace("}", "}}")
    for name in ("evt", "pi", "bid"):
        text = text.replace("{{" + name + "}}", "{" + name + "}")
    return text


def template(created, size):
    """A format string whose rendering is exactly `size` bytes long (or the minimum, if larger)."""
    bare = body_parts(created, "")
    sample = bare.format(evt="evt_" + "0" * ID_WIDTH, pi="pi_" + "0" * ID_WIDTH, bid=str(uuid.UUID(int=0)))
    padding = max(0, size - len(sample.encode()))
    return body_parts(created, ("Booking payment, bench padding " + "x" * padding)[:padding])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--secret")
    parser.add_argument("--count", type=int)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tag", default="run", help="makes the ids unique per run (letters and digits)")
    parser.add_argument("--out")
    parser.add_argument("--bytes", type=int, default=1024)
    parser.add_argument("--pgbench-template", action="store_true")
    args = parser.parse_args()

    now = int(time.time())
    fmt = template(now, args.bytes)
    if args.pgbench_template:
        print(fmt.format(evt="@EVT@", pi="@PI@", bid="@BID@"))
        return 0
    if not (args.secret and args.count and args.out and args.threads >= 1):
        parser.error("--secret, --count, --out and --threads >= 1 are needed")
    tag = "".join(c for c in args.tag if c.isalnum())[:8]
    key = args.secret.encode()
    prefix = f"{now}.".encode()
    files = [open(f"{args.out}.{t}", "w", encoding="utf-8", newline="\n") for t in range(args.threads)]
    size = None
    for i in range(args.count):
        suffix = f"{tag}x{i}"
        suffix = "0" * (ID_WIDTH - len(suffix)) + suffix if len(suffix) < ID_WIDTH else suffix[-ID_WIDTH:]
        body = fmt.format(evt="evt_" + suffix, pi="pi_" + suffix, bid=str(uuid.uuid4()))
        data = body.encode()
        signature = hmac.new(key, prefix + data, hashlib.sha256).hexdigest()
        files[i % args.threads].write(f"t={now},v1={signature}\t{body}\n")
        size = len(data)
    for f in files:
        f.close()
    print(f"{args.count} deliveries of {size} bytes, signed at {now}, in {args.out}.0..{args.threads - 1}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
