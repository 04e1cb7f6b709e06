package queue

import "context"

// Backoff exposes backoff to the external tests.
var Backoff = backoff

// SetStopHook makes Stop call f once it has stopped pulling messages.
func SetStopHook(k *Consumer, f func()) { k.onStop = f }

// RelayPass runs one pass of the relay, as Run does on every tick.
func RelayPass(ctx context.Context, r *Relay) { r.pass(ctx) }

// RetryDelay exposes retryDelay to the external tests.
var RetryDelay = retryDelay
