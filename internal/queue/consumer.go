package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ackTimeout bounds waiting for the server to confirm an ack or a
// dead-letter publish.
const ackTimeout = 10 * time.Second

// ConsumerConfig configures a durable pull consumer.
type ConsumerConfig struct {
	Stream  string // required
	Durable string // required: the consumer's name, shared by all instances
	// FilterSubjects selects the stream's subjects to receive; none means all.
	FilterSubjects []string
	// MaxDeliver is the number of deliveries after which a message that
	// still fails goes to the dead-letter stream; default 8.
	MaxDeliver int
	// BackoffBase and BackoffMax shape the delay before a failed message is
	// redelivered (see the package doc); defaults 1s and 5m.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// AckWait is how long the server waits for an ack before redelivering;
	// default 30s. It is also the handler's deadline.
	AckWait time.Duration
	// Concurrency is the number of messages handled at once; default 1.
	Concurrency int
	// Metrics, when set, counts handled messages.
	Metrics *Metrics
}

func (cfg *ConsumerConfig) setDefaults() error {
	if cfg.Stream == "" || cfg.Durable == "" {
		return errors.New("consume: stream and durable are required")
	}
	if cfg.MaxDeliver <= 0 {
		cfg.MaxDeliver = 8
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = time.Second
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 5 * time.Minute
	}
	cfg.BackoffMax = max(cfg.BackoffMax, cfg.BackoffBase)
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	return nil
}

// Consumer runs a Handler over a durable consumer until Stop.
type Consumer struct {
	client  *Client
	cfg     ConsumerConfig
	handler Handler
	logger  *slog.Logger

	iter     jetstream.MessagesContext
	slots    chan struct{} // one token per running handler
	inflight sync.WaitGroup
	pumpDone chan struct{}
	stopping atomic.Bool
	stopOnce sync.Once
	onStop   func() // test hook, run once Stop has stopped pulling

	// hctx is the parent of handler contexts. It keeps the values of the
	// ctx given to Consume but not its cancellation: handlers are cancelled
	// only when Stop runs out of time.
	hctx    context.Context
	hcancel context.CancelFunc
}

// Consume creates (or updates) the durable pull consumer cfg.Durable on
// cfg.Stream with explicit acks and starts handling its messages with h. It
// also makes sure the dead-letter stream exists. ctx bounds the setup only;
// the consumer runs until Stop.
func (c *Client) Consume(ctx context.Context, cfg ConsumerConfig, h Handler, logger *slog.Logger) (*Consumer, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := c.EnsureDeadLetterStream(ctx); err != nil {
		return nil, err
	}
	jc := jetstream.ConsumerConfig{
		Durable:   cfg.Durable,
		AckPolicy: jetstream.AckExplicitPolicy,
		AckWait:   cfg.AckWait,
		// MaxDeliver stays unlimited on the server: this package counts
		// deliveries itself and dead-letters the message, and a message the
		// server stopped redelivering would be lost if that publish failed.
		MaxDeliver: -1,
	}
	if len(cfg.FilterSubjects) == 1 {
		jc.FilterSubject = cfg.FilterSubjects[0]
	} else {
		jc.FilterSubjects = cfg.FilterSubjects
	}
	cons, err := c.js.CreateOrUpdateConsumer(ctx, cfg.Stream, jc)
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w", cfg.Durable, cfg.Stream, err)
	}
	// A small buffer: messages pulled but not yet handled count against
	// AckWait, and Stop handles what is buffered before returning.
	iter, err := cons.Messages(jetstream.PullMaxMessages(2 * cfg.Concurrency))
	if err != nil {
		return nil, fmt.Errorf("pull from consumer %s: %w", cfg.Durable, err)
	}
	k := &Consumer{
		client:   c,
		cfg:      cfg,
		handler:  h,
		logger:   logger.With("stream", cfg.Stream, "consumer", cfg.Durable),
		iter:     iter,
		slots:    make(chan struct{}, cfg.Concurrency),
		pumpDone: make(chan struct{}),
	}
	k.hctx, k.hcancel = context.WithCancel(context.WithoutCancel(ctx))
	go k.pump()
	return k, nil
}

// pump pulls a message whenever a handler slot is free.
func (k *Consumer) pump() {
	defer close(k.pumpDone)
	for {
		k.slots <- struct{}{}
		msg, err := k.iter.Next()
		if err != nil {
			<-k.slots
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				if !k.stopping.Load() {
					// The connection closed or the consumer was deleted.
					k.logger.Error("consumer stopped pulling", "error", err)
				}
				return
			}
			k.logger.Warn("pull messages", "error", err)
			continue
		}
		if k.hctx.Err() != nil {
			// Stop ran out of time: hand buffered messages straight back.
			_ = msg.Nak()
			<-k.slots
			continue
		}
		k.inflight.Add(1)
		go func() {
			defer k.inflight.Done()
			defer func() { <-k.slots }()
			k.handle(msg)
		}()
	}
}

// Stop stops pulling new messages, lets the running handlers (and those of
// the few messages already buffered) finish and waits until their acks are
// confirmed. When ctx ends first it cancels the handlers' contexts, hands
// the buffered messages back to the server and returns ctx's error; a
// message whose handler did not finish is redelivered after AckWait.
func (k *Consumer) Stop(ctx context.Context) error {
	k.stopOnce.Do(func() {
		k.stopping.Store(true)
		k.iter.Drain()
		if k.onStop != nil {
			k.onStop()
		}
	})
	done := make(chan struct{})
	go func() {
		<-k.pumpDone
		k.inflight.Wait() // every Add happened before pumpDone closed
		close(done)
	}()
	select {
	case <-done:
		k.hcancel()
		return nil
	case <-ctx.Done():
		k.hcancel()
		return fmt.Errorf("stop consumer %s: %w", k.cfg.Durable, ctx.Err())
	}
}

func (k *Consumer) handle(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil { // not a JetStream delivery: cannot happen on a pull consumer
		k.logger.Error("message metadata", "subject", msg.Subject(), "error", err)
		_ = msg.Term()
		return
	}
	m := Message{
		Subject:      msg.Subject(),
		ID:           msg.Headers().Get(jetstream.MsgIDHeader),
		Data:         msg.Data(),
		Header:       cloneHeader(msg.Headers()),
		NumDelivered: md.NumDelivered,
	}
	if m.ID == "" {
		m.ID = fmt.Sprintf("%s:%d", md.Stream, md.Sequence.Stream)
	}
	log := k.logger.With("subject", m.Subject, "msg_id", m.ID, "deliveries", m.NumDelivered)

	herr := k.call(m)
	if herr == nil {
		ctx, cancel := context.WithTimeout(k.hctx, ackTimeout)
		defer cancel()
		if err := msg.DoubleAck(ctx); err != nil {
			// The message comes again after AckWait; handlers are idempotent.
			log.Warn("ack message", "error", err)
		}
		k.cfg.Metrics.consumed(k.cfg.Durable, "ack")
		return
	}
	if IsPermanent(herr) || m.NumDelivered >= uint64(k.cfg.MaxDeliver) {
		err := k.deadLetter(msg, m, md.Stream, herr)
		if err == nil {
			log.Warn("message dead-lettered", "error", herr)
			k.cfg.Metrics.consumed(k.cfg.Durable, "dead_letter")
			return
		}
		log.Error("dead-letter message", "error", err, "cause", herr)
	}
	d := backoff(m.NumDelivered, k.cfg.BackoffBase, k.cfg.BackoffMax, rand.Int64N)
	log.Info("handler failed, retrying", "error", herr, "delay", d)
	if err := msg.NakWithDelay(d); err != nil {
		log.Warn("nak message", "error", err)
	}
	k.cfg.Metrics.consumed(k.cfg.Durable, "nak")
}

// call runs the handler with a deadline of AckWait (past it the server
// redelivers anyway) and turns a panic into an error.
func (k *Consumer) call(m Message) (err error) {
	ctx, cancel := context.WithTimeout(k.hctx, k.cfg.AckWait)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			k.logger.Error("handler panic", "subject", m.Subject, "msg_id", m.ID, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panic: %v", p)
		}
	}()
	return k.handler(ctx, m)
}
