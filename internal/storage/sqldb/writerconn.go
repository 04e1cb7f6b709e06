package sqldb

import (
	"context"
	"database/sql/driver"
	"fmt"

	"modernc.org/sqlite"
)

// writerConnector opens SQLite writer connections whose statements ignore
// the cancellation of their context. The driver answers a canceled context
// with sqlite3_interrupt, and SQLite answers an interrupted INSERT, UPDATE
// or DELETE inside a transaction by rolling back the whole transaction —
// with group commit, everyone's in the batch (see committer). Writes are
// short, so letting one finish after its client went away costs little.
// BEGIN keeps its context: interrupting it, while it waits for another
// process's lock, rolls back nothing.
type writerConnector struct{ driver.Connector }

func newWriterConnector(dsn string) (driver.Connector, error) {
	c, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite connector: %w", err)
	}
	return writerConnector{c}, nil
}

func (c writerConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := conn.(sqliteConn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("sqlite connection %T lacks an interface database/sql uses", conn)
	}
	return &writerConn{conn: sc}, nil
}

// writerConn is the driver connection the writer pool sees: every method
// passes through, statements with their context's cancellation removed.
type writerConn struct{ conn sqliteConn }

// The optional interfaces of the driver's connection that database/sql
// looks for, all of which it implements.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

var (
	_ sqliteConn  = (*writerConn)(nil)
	_ driver.Stmt = writerStmt{}
)

func (c *writerConn) Prepare(q string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), q)
}

func (c *writerConn) Close() error { return c.conn.Close() }

func (c *writerConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *writerConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.conn.BeginTx(ctx, opts)
}

func (c *writerConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	st, err := c.conn.PrepareContext(context.WithoutCancel(ctx), q)
	if err != nil {
		return nil, err
	}
	ss, ok := st.(sqliteStmt)
	if !ok {
		st.Close()
		return nil, fmt.Errorf("sqlite statement %T lacks an interface database/sql uses", st)
	}
	return writerStmt{ss}, nil
}

func (c *writerConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	return c.conn.ExecContext(context.WithoutCancel(ctx), q, args)
}

func (c *writerConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	return c.conn.QueryContext(context.WithoutCancel(ctx), q, args)
}

func (c *writerConn) Ping(ctx context.Context) error { return c.conn.Ping(ctx) }

func (c *writerConn) ResetSession(ctx context.Context) error { return c.conn.ResetSession(ctx) }

func (c *writerConn) IsValid() bool { return c.conn.IsValid() }

type sqliteStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// writerStmt is a prepared statement of a writerConn.
type writerStmt struct{ sqliteStmt }

func (s writerStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.sqliteStmt.ExecContext(context.WithoutCancel(ctx), args)
}

func (s writerStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.sqliteStmt.QueryContext(context.WithoutCancel(ctx), args)
}
