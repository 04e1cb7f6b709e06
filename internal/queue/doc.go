// Package queue is Strata's asynchronous processing on NATS JetStream: an
// embedded server (StartServer), a client that creates streams and
// publishes with de-duplication ids (Client), durable pull consumers with
// explicit acks, back-off and a dead-letter stream (Consume), and the
// transactional outbox with its relay (WriteOutbox, Relay).
//
// # Delivery guarantees
//
// A module that changes state writes the event to its outbox table in the
// same database transaction (WriteOutbox): the event exists if and only if
// the change committed. The Relay publishes outbox rows at least once: it
// marks a row sent only after JetStream acknowledged it, and publishes
// again whatever it had not marked when it crashed or failed. Every publish
// carries the outbox row id as Nats-Msg-Id, so JetStream drops a repeat
// that arrives within the stream's Duplicates window (default 10 minutes;
// it must exceed the relay's worst-case downtime). Consumers receive each
// stored message at least once (a handler that crashes before its ack sees
// the message again), so handlers are idempotent, keyed by Message.ID.
// Together: exactly-once in effect, not exactly-once delivery.
//
// # Consumers and back-off
//
// A handler's nil acknowledges the message, and Consume waits for the
// server to confirm that ack (so Consumer.Stop returns only once what was
// finished is acknowledged). An error negatively acknowledges it with a
// delay; after delivery n (1-based) failed, the delay is drawn uniformly
// ("full jitter") from
//
//	[0, min(BackoffMax, BackoffBase * 2^(n-1))]
//
// A panicking handler counts as a failed one. The server's own redelivery
// limit stays unlimited: this package counts deliveries itself.
//
// # Dead letters
//
// When delivery MaxDeliver fails, or the handler returns Permanent(err),
// the message is copied to the stream DLQ (subjects dlq.>) on subject
//
//	dlq.<stream>.<original subject>
//
// with the original data and headers (minus the server's Nats-* headers)
// plus Strata-Dlq-Reason (the error text), Strata-Dlq-Stream,
// Strata-Dlq-Consumer, Strata-Original-Subject, Strata-Deliveries and
// Strata-Original-Msg-Id; only once DLQ stored the copy is the original
// terminated. DLQ keeps a message for DeadLetterMaxAge (14 days), or
// until an operator removes it: long enough to inspect and replay, not
// forever, as dead letters may carry sensitive payloads.
//
// # Outbox ordering
//
// The relay publishes each database's outbox rows in id order (the order
// of their commits, near enough), with one exception: a row whose publish
// fails (no stream captures its subject, say) is put off with exponential
// back-off (1s doubling to 5 minutes, jittered) while the rows after it go
// ahead, so one bad row cannot hold up every later event. Consumers must
// therefore not rely on events arriving in commit order; where order
// matters they compare versions or timestamps in the payload. A row is
// retried until it is published; strata_outbox_oldest_unsent_seconds
// shows one that is stuck, and its last_error column says why. When the
// connection to NATS is reported down, the relay stops its pass without
// penalising any row. An outage that shows only as publish timeouts (while
// the client reconnects) cannot be told from a bad row at once: each pass
// then puts off up to two rows before it stops, and those come out later,
// out of order.
package queue
