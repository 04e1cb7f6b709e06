package payments

import (
	"time"

	"github.com/stratadev/strata/internal/queue"
)

// Stream names the JetStream stream carrying payments' events.
const Stream = "PAYMENTS"

// Subjects of the events payments publishes.
const (
	SubjectPurchaseCompleted = "payments.purchase.completed" // PurchaseEvent
	SubjectPurchaseRefunded  = "payments.purchase.refunded"  // PurchaseEvent
)

// StreamConfig is the stream payments' events are published to, kept 30
// days: webhooks and reconciliation may replay them.
func StreamConfig() queue.StreamConfig {
	return queue.StreamConfig{Name: Stream, Subjects: []string{"payments.>"}, MaxAge: 30 * 24 * time.Hour}
}
