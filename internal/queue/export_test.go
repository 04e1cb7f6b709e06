package queue

// Backoff exposes backoff to the external tests.
var Backoff = backoff

// SetStopHook makes Stop call f once it has stopped pulling messages.
func SetStopHook(k *Consumer, f func()) { k.onStop = f }
