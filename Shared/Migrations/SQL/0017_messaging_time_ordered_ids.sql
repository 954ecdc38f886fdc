-- Time-ordered (version 7, RFC 9562) UUIDs for the ids Postgres makes itself: a notification's
-- deliveries and a payout run's payouts. The services make theirs the same way (`UUID.timeOrdered`),
-- except a hold's id, which is its fencing token and stays random. A key that grows with time goes to
-- the right-hand end of its B-tree index, as a sequence does, so inserts write few pages, and after a
-- checkpoint only those pages' first changes are logged whole; random keys log a full page for
-- nearly every insert until each leaf of the index has been written once (docs/performance.md,
-- "Time-ordered identifiers"). Defined in `messaging`, the schema every service's database shares.
--
-- The Unix time in milliseconds goes into the first 48 bits of a random (version 4) UUID, and the
-- version's bits 0100 become 0111 (bits 52 and 53 of the bytes: `set_bit` counts from each byte's
-- least significant bit); the variant and the 74 random bits stay.
CREATE FUNCTION messaging.uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;
